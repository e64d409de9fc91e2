"""The lineage graph: parents left of children, edges labelled with their role, names escaped, links by kind."""

from __future__ import annotations

import re
from pathlib import Path

from wattlm.console.lineage_svg import lineage_svg
from wattlm.registry import Artifact


def art(id_: str, kind: str, name: str, parents=(), created: float = 0.0, tier=None) -> Artifact:
    return Artifact(id=id_, kind=kind, name=name, tier=tier, format=None, path=Path("/x"), created=created,
                    parents=list(parents))


def test_columns_follow_the_lineage_and_edges_carry_roles():
    base = art("mo-1", "model", "base", tier="foundation")
    corpus = art("da-1", "dataset", "corpus <raw>")
    child = art("mo-2", "model", "child", [("mo-1", "parent"), ("da-1", "train_data")], 1.0, "industry")
    export = art("ex-1", "export", "child-q8", [("mo-2", "parent")], 2.0, "industry")
    svg = lineage_svg(child, [base, corpus, child], [export], "lineage of child")
    x = {node: float(re.search(rf'data-id="{node}"><rect x="([\d.]+)"', svg).group(1)) for node in
         ("mo-1", "da-1", "mo-2", "ex-1")}
    assert x["mo-1"] == x["da-1"] < x["mo-2"] < x["ex-1"]
    assert svg.count('class="edge"') == 3 and ">train_data<" in svg and ">parent<" in svg
    assert "corpus &lt;raw&gt;" in svg and "<raw>" not in svg
    assert 'href="/datasets/da-1"' in svg and 'href="/models/ex-1"' in svg
    assert 'class="node self" data-id="mo-2"' in svg
