from __future__ import annotations

import os
import sqlite3

import pytest

from wattlm.errors import NotFound, WattError
from wattlm.registry import Registry
from wattlm.registry_locks import try_lock


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


def test_old_workspace_is_migrated_and_its_rows_count_as_committed(tmp_path):
    home = tmp_path / "ws"
    home.mkdir()
    with sqlite3.connect(home / "registry.sqlite") as db:  # the schema before crash safety: no status
        db.executescript(
            "CREATE TABLE artifacts (id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, tier TEXT,"
            " format TEXT, path TEXT NOT NULL, created REAL NOT NULL, cache_key TEXT,"
            " recipe TEXT NOT NULL DEFAULT '{}', metrics TEXT NOT NULL DEFAULT '{}', meta TEXT NOT NULL DEFAULT '{}');"
            f"INSERT INTO artifacts (id, kind, name, path, created, cache_key) VALUES"
            f" ('mo-0123456789', 'model', 'old', '{tmp_path}', 1.0, 'k-old');"
        )
    reg = Registry(home)
    assert reg.get("old").id == "mo-0123456789" and reg.find("k-old").name == "old"
    assert reg.db.execute("SELECT status FROM artifacts").fetchone()[0] == "committed"
    assert reg.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    Registry(home)  # a second open finds the column and adds nothing


def test_pending_rows_are_invisible_to_every_reader(tmp_path):
    reg = Registry(tmp_path / "ws")
    base = reg.register("model", "base", path=tmp_path, tier="foundation", format="hf")
    with reg.staging() as staged:
        child = reg.register("model", "child", staged=staged, tier="industry", parents=[(base.id, "parent")],
                             cache_key="k-child")
    reg.db.execute("UPDATE artifacts SET status='pending' WHERE id=?", (child.id,))
    with pytest.raises(NotFound):
        reg.get(child.id)
    with pytest.raises(NotFound):
        reg.get("child")
    assert reg.find("k-child") is None
    assert [a.id for a in reg.list()] == [base.id]
    assert reg.children(base.id) == []


def test_a_live_staging_folder_is_never_swept_and_a_reused_pid_keeps_no_garbage(tmp_path):
    reg = Registry(tmp_path / "ws")
    # A folder named after a live PID (ours) but with no lock held: a crashed run whose PID was reused.
    garbage = reg.home / "staging" / f"{os.getpid()}-0badf00d"
    garbage.mkdir()
    with reg.staging() as staged:
        (staged / "half.bin").write_bytes(b"x")
        Registry(reg.home)  # another process opening the workspace sweeps
        assert staged.exists() and not garbage.exists()
    assert list((reg.home / "staging").iterdir()) == []  # neither the folder nor its lock file is left


def test_key_lock_excludes_others_and_leaves_no_lock_file(tmp_path):
    reg = Registry(tmp_path / "ws")
    lock = reg.home / "locks" / "k1.lock"
    with reg.key_lock("k1"):
        assert try_lock(lock) is None  # held (flock is per open file, so this holds within one process too)
    assert not lock.exists()
    art, reused = reg.find_or_produce("k1", lambda staged: {"kind": "dataset", "name": "d"})
    assert not reused and reg.find_or_produce("k1", lambda staged: {"kind": "dataset", "name": "d"}) == (art, True)


def test_short_ids_resolve_when_unique(tmp_path):
    reg = Registry(tmp_path / "ws")
    art = reg.register("model", "m", path=tmp_path)
    assert reg.get(art.id[:9]).id == art.id
    reg.db.execute("UPDATE artifacts SET id='mo-aaaa000001'")
    reg.register("model", "m2", path=tmp_path)
    reg.db.execute("UPDATE artifacts SET id='mo-aaaa000002' WHERE name='m2'")
    with pytest.raises(NotFound):
        reg.get("mo-aaaa")  # ambiguous: two ids start so


def test_an_error_inside_register_puts_the_folder_back_and_drops_the_row(tmp_path, monkeypatch):
    import wattlm.registry as registry_module

    reg = Registry(tmp_path / "ws")

    def disk_full(folder):
        raise OSError("no space left on device")

    monkeypatch.setattr(registry_module, "fsync_tree", disk_full)
    with reg.staging() as staged:
        (staged / "w.bin").write_bytes(b"w")
        with pytest.raises(OSError, match="no space"):
            reg.register("model", "m", staged=staged)
        assert (staged / "w.bin").exists()
    assert reg.db.execute("SELECT COUNT(*) FROM artifacts").fetchone()[0] == 0
    assert list((reg.home / "artifacts").iterdir()) == [] and list((reg.home / "locks").iterdir()) == []
