"""`watt registry check`: every kind of orphan is found and cleaned; what a live process holds is not."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from wattlm.cli import app
from wattlm.registry import Registry
from wattlm.registry_check import ORPHAN_KINDS, check_registry
from wattlm.registry_locks import release_lock, try_lock


def staged_artifact(reg: Registry, name: str, **fields):
    with reg.staging() as staged:
        (staged / "file.txt").write_text(name)
        return reg.register("model", name, staged=staged, **fields)


def workspace_with_one_orphan_of_each_kind(tmp_path) -> Registry:
    reg = Registry(tmp_path / "ws")
    dead = staged_artifact(reg, "dead")  # its process died before marking it committed
    reg.db.execute("UPDATE artifacts SET status='pending' WHERE id=?", (dead.id,))
    (reg.home / "artifacts" / "mo-00000000ff").mkdir()  # a folder no row names
    gone = staged_artifact(reg, "gone")
    shutil.rmtree(gone.path)  # a committed row whose folder was deleted by hand
    (reg.home / "staging" / "4242-deadbeef").mkdir()  # crashed runs' temp folders
    (reg.home / "staging" / "4243-deadbeef").mkdir()
    (reg.home / "locks" / "some-key.lock").touch()  # a crashed run's cache-key lock
    return reg


def test_each_kind_of_orphan_is_found_and_cleaned(tmp_path):
    reg = workspace_with_one_orphan_of_each_kind(tmp_path)
    kept = staged_artifact(reg, "kept")
    report = check_registry(reg)
    assert sorted(o["kind"] for o in report["found"]) == sorted([*ORPHAN_KINDS, "stale_staging"])
    assert not report["clean"]
    assert report["removed"] == []  # a look changes nothing
    assert check_registry(reg)["found"] == report["found"]

    cleaned = check_registry(reg, clean=True)
    assert cleaned["clean"] and cleaned["remaining"] == [] and len(cleaned["removed"]) == len(ORPHAN_KINDS) + 1
    assert [a.name for a in reg.list()] == ["kept"] and (kept.path / "file.txt").exists()
    assert sorted(p.name for p in (reg.home / "artifacts").iterdir()) == [kept.id]
    assert list((reg.home / "staging").iterdir()) == [] and list((reg.home / "locks").iterdir()) == []
    assert reg.db.execute("SELECT COUNT(*) FROM artifacts").fetchone()[0] == 1


def test_what_a_live_process_holds_is_left_alone(tmp_path):
    reg = Registry(tmp_path / "ws")
    busy = staged_artifact(reg, "busy")  # a registration in progress: pending, its lock held
    reg.db.execute("UPDATE artifacts SET status='pending' WHERE id=?", (busy.id,))
    register_lock = reg.home / "locks" / f"register-{busy.id}.lock"
    handle = try_lock(register_lock)
    with reg.staging() as staged, reg.key_lock("live-key"):
        report = check_registry(reg, clean=True)
        assert report["found"] == [] and report["clean"]
        assert staged.exists() and busy.path.exists() and (reg.home / "locks" / "live-key.lock").exists()
    release_lock(register_lock, handle)  # the process dies: now its row is an orphan
    assert [o["kind"] for o in check_registry(reg)["found"]] == ["pending_row"]


def test_cli_exit_codes_and_output(tmp_path):
    reg = workspace_with_one_orphan_of_each_kind(tmp_path)
    runner = CliRunner()
    listed = runner.invoke(app, ["registry", "check", "--home", str(reg.home)])
    assert listed.exit_code == 1
    assert "pending_row: " in listed.stdout and "--clean" in listed.stdout.splitlines()[-1]
    cleaned = runner.invoke(app, ["registry", "check", "--clean", "--home", str(reg.home)])
    assert cleaned.exit_code == 0 and "removed stale_lock: " in cleaned.stdout and "registry clean" in cleaned.stdout
    again = runner.invoke(app, ["registry", "check", "--home", str(reg.home), "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["found"] == []
