import pytest

from tests.kb.conftest import write_docs
from wattlm.errors import NotFound, WattError
from wattlm.kb.cli import _origins, documents_dataset
from wattlm.kb.index import load_index
from wattlm.kb.retrieve import search
from wattlm.kb.stage import add_to_kb, build_kb, latest_kb, remove_from_kb


def test_the_kb_is_an_artifact_whose_parent_is_the_dataset(tiny_kb):
    registry, kb, _ = tiny_kb
    assert kb.kind == "kb" and kb.format == "kb"
    (parent, role), = kb.parents
    assert registry.get(parent).kind == "dataset" and role == "documents"
    assert kb.metrics["chunks"] == len(load_index(kb.path).chunks) and kb.metrics["superseded_chunks"] == 1


def test_rebuilding_an_unchanged_set_is_a_cache_hit(tiny_kb):
    registry, kb, docs = tiny_kb
    dataset = documents_dataset(registry, [docs], "tiny-documents", progress=False)
    again, reused = build_kb(registry, dataset, "tiny", origins=_origins([docs]))
    assert reused and again.id == kb.id


def test_add_reuses_unchanged_vectors_and_remove_drops_a_source(tiny_kb, tmp_path):
    registry, kb, docs = tiny_kb
    extra = write_docs(tmp_path / "extra", {"storage.txt": "储能电站安全规定\n\n第一条 单体电池温度超过65摄氏度时应立即停止充放电。\n"})
    dataset = documents_dataset(registry, [extra], "tiny-added", progress=False)
    added, reused = add_to_kb(registry, kb, dataset, _origins([extra]))
    assert not reused and added.name == "tiny"
    assert (kb.id, "previous") in added.parents
    assert added.metrics["embedded"] == 1  # only the new chunk; the others' vectors came from the parent
    assert added.metrics["chunks"] == kb.metrics["chunks"] + 1
    assert latest_kb(registry, "tiny").id == added.id
    assert search(added, "电池温度超过多少度要停止充放电？", k=1)[0].source.endswith("storage.txt")

    source = str(extra / "storage.txt")
    removed, _ = remove_from_kb(registry, added, source)
    assert removed.metrics["chunks"] == kb.metrics["chunks"] and removed.metrics["embedded"] == 0
    assert all(c.source != source for c in load_index(removed.path).chunks)
    with pytest.raises(NotFound, match="has no source 'nope.md'"):
        remove_from_kb(registry, removed, "nope.md")


def test_adding_a_file_with_no_text_names_it_and_changes_nothing(tiny_kb, tmp_path):
    registry, kb, _ = tiny_kb
    before = latest_kb(registry, "tiny").id
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "blank.txt").write_text("   \n", "utf-8")
    dataset = documents_dataset(registry, [bad], "bad", progress=False)
    with pytest.raises(WattError, match=r"nothing added to knowledge base tiny: no chunks in .*blank.txt"):
        add_to_kb(registry, kb, dataset, _origins([bad]))
    assert latest_kb(registry, "tiny").id == before


def test_an_unknown_kb_is_named(tiny_kb):
    registry, _, _ = tiny_kb
    with pytest.raises(NotFound, match="unknown knowledge base: 'nope'"):
        latest_kb(registry, "nope")
