"""Fault and concurrency tests of the registry with real processes.

`kill -9` at each step of `register()` (frozen there by the fault-test hook WATT_REGISTRY_PAUSE_AT),
two processes producing the same cache key, two processes adding scores to one artifact.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wattlm.cli import app
from wattlm.registry import Registry
from wattlm.registry_locks import REGISTER_STEPS

# One worker script, two jobs: `produce` (find_or_produce a key, the producer writing two files and
# sleeping), `metrics` (add 50 scores one by one). A barrier of files makes two workers start together.
WORKER = r"""
import json, sys, time
from pathlib import Path
from wattlm.registry import Registry

job, home, tag, barrier = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4:]
registry = Registry(home)
(home / f"ready-{tag}").touch()
while not all((home / f"ready-{other}").exists() for other in barrier):
    time.sleep(0.01)

def produce(staged):
    (staged / "weights.bin").write_bytes(b"w" * 4096)
    (staged / "config.json").write_text('{"layers": 2}')
    time.sleep(float(__import__("os").environ.get("PRODUCE_SECONDS", "0")))
    return {"kind": "model", "name": "m", "tier": "industry", "format": "hf", "metrics": {"by": tag}}

if job == "produce":
    art, reused = registry.find_or_produce("key-1", produce)
    print(json.dumps({"id": art.id, "reused": reused}))
elif job == "metrics":
    target = registry.get("target")
    for i in range(50):
        registry.add_metrics(target.id, {f"{tag}{i}": i})
"""


def worker(job: str, home: Path, tag: str, *barrier: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER, job, str(home), tag, *barrier],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def check(home: Path, *args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["registry", "check", "--home", str(home), "--json", *args])
    return result.exit_code, json.loads(result.stdout)


def wait_for(path: Path, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"worker never reached {path.name}"
        time.sleep(0.02)


@pytest.mark.parametrize("step", REGISTER_STEPS)
def test_kill_9_at_each_step_of_register_leaves_nothing_half_registered(tmp_path, step):
    home = tmp_path / "ws"
    Registry(home).close()
    marker = tmp_path / "paused"
    proc = worker("produce", home, "a", env={"WATT_REGISTRY_PAUSE_AT": step, "WATT_REGISTRY_PAUSE_FILE": str(marker)})
    wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    # Nothing a reader sees, and no committed row without its folder.
    registry = Registry(home, sweep=False)
    assert registry.list() == [] and registry.find("key-1") is None
    with sqlite3.connect(home / "registry.sqlite") as db:
        rows = db.execute("SELECT id, path, status FROM artifacts").fetchall()
    assert [status for _, _, status in rows] == ["pending"]  # the killed registration's own row, unseen
    assert all(Path(path).exists() for _, path, status in rows if status == "committed")

    code, report = check(home)
    kinds = {o["kind"] for o in report["found"]}
    assert code == 1 and "pending_row" in kinds
    assert "stale_lock" in kinds  # the cache key's lock file of the dead process
    if step == "pending":  # killed before the move: the temp folder is still in staging/
        assert "stale_staging" in kinds
    code, report = check(home, "--clean")
    assert code == 0 and report["clean"] and report["remaining"] == []
    assert check(home) == (0, {**report, "found": [], "removed": []})
    for sub in ("artifacts", "staging", "locks"):
        assert list((home / sub).iterdir()) == [], sub

    rerun = worker("produce", home, "b")
    out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    produced = json.loads(out)
    art = Registry(home).get(produced["id"])
    assert not produced["reused"] and (art.path / "weights.bin").stat().st_size == 4096
    assert check(home)[0] == 0


def test_two_processes_on_one_key_register_one_artifact(tmp_path):
    home = tmp_path / "ws"
    Registry(home).close()
    slow = {"PRODUCE_SECONDS": "1.0"}
    procs = [worker("produce", home, tag, "a", "b", env=slow) for tag in ("a", "b")]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    assert results[0]["id"] == results[1]["id"]
    assert sorted(r["reused"] for r in results) == [False, True]
    assert [a.id for a in Registry(home).list()] == [results[0]["id"]]
    code, report = check(home)
    assert code == 0 and report["found"] == []


def test_two_processes_adding_metrics_lose_no_score(tmp_path):
    home = tmp_path / "ws"
    registry = Registry(home)
    # A large metrics dict widens the read-merge-write window, so a lost update would show reliably.
    ballast = {f"ppl:set{i}/heldout@mo-{i:010x}": {"ppl": 1.0 + i} for i in range(3000)}
    registry.register("report", "target", path=tmp_path, metrics=ballast)
    procs = [worker("metrics", home, tag, "a", "b") for tag in ("a", "b")]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    metrics = Registry(home).get("target").metrics
    assert metrics == {**ballast, **{f"a{i}": i for i in range(50)}, **{f"b{i}": i for i in range(50)}}
