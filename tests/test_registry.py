from __future__ import annotations

import pytest

from wattlm.errors import NotFound, WattError
from wattlm.registry import Registry


def test_register_staged_moves_folder_and_records_lineage(tmp_path):
    reg = Registry(tmp_path / "ws")
    with reg.staging() as staged:
        (staged / "data.txt").write_text("hello")
        ds = reg.register("dataset", "corpus", staged=staged, format="jsonl", metrics={"docs": 3})
    assert (ds.path / "data.txt").read_text() == "hello"
    assert ds.path.parent == reg.home / "artifacts"
    base = reg.register("model", "base", path=tmp_path, tier="foundation", format="hf")
    with reg.staging() as staged:
        child = reg.register("model", "child", staged=staged, tier="industry", format="hf",
                             parents=[(base.id, "parent"), (ds.id, "train_data")])
    assert sorted(child.parents) == sorted([(base.id, "parent"), (ds.id, "train_data")])
    assert [a.id for a in reg.ancestors(child.id)] == [ds.id, base.id, child.id]
    assert [a.id for a in reg.children(base.id)] == [child.id]
    assert reg.get("child").id == child.id  # by name
    assert list(reg.list("dataset"))[0].metrics == {"docs": 3}
    assert not any((reg.home / "staging").iterdir())


def test_failed_stage_registers_nothing_and_leaves_no_folder(tmp_path):
    reg = Registry(tmp_path / "ws")
    with pytest.raises(RuntimeError):
        with reg.staging() as staged:
            (staged / "half.bin").write_bytes(b"x")
            raise RuntimeError("crash mid-stage")
    assert reg.list() == []
    assert not any((reg.home / "staging").iterdir())
    assert not any((reg.home / "artifacts").iterdir())


def test_stale_staging_of_dead_process_is_swept(tmp_path):
    reg = Registry(tmp_path / "ws")
    stale = reg.home / "staging" / "999999999-deadbeef"
    stale.mkdir()
    Registry(reg.home)
    assert not stale.exists()


def test_cache_key_lookup_and_metrics_merge(tmp_path):
    reg = Registry(tmp_path / "ws")
    assert reg.find("k1") is None
    art = reg.register("report", "r", path=tmp_path, cache_key="k1", metrics={"a": 1})
    assert reg.find("k1").id == art.id
    reg.add_metrics(art.id, {"b": 2})
    assert reg.get(art.id).metrics == {"a": 1, "b": 2}


def test_errors_name_the_problem(tmp_path):
    reg = Registry(tmp_path / "ws")
    with pytest.raises(NotFound, match="nope"):
        reg.get("nope")
    with pytest.raises(NotFound):
        reg.register("model", "m", path=tmp_path, parents=[("missing-id", "parent")])
    with pytest.raises(WattError, match="kind"):
        reg.register("banana", "m", path=tmp_path)
    with pytest.raises(WattError, match="tier"):
        reg.register("model", "m", path=tmp_path, tier="galaxy")
