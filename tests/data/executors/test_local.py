"""The sharded executor: same output for any worker count, resumable after an interruption."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from wattlm.data import DataConfig, build_corpus
from wattlm.data.executors import local as executor
from wattlm.data.executors.local import shard_files
from wattlm.data.readers.source import list_input_files

from ..helpers import write
from ..test_pipeline import CONFIG, make_raw

SRC = Path(__file__).resolve().parents[2] / "src"


def make_big_raw(root: Path) -> Path:
    """make_raw plus a forum folder whose read counter is chrome and whose lines are boilerplate (across shards)."""
    make_raw(root)
    for i in range(6):
        body = "\n".join(f"第{i}帖第{j}段：变电站第{i * 7 + j}号主变压器油温{40 + j}度，负荷电流正常，巡视人员已记录。"
                         for j in range(3))
        write(root / "forum" / f"post{i}.txt", f"查看: {100 + i * 37} | 回复: {i}\n{body}\n返回列表")
    return root


def output_bytes(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return make_big_raw(tmp_path_factory.mktemp("exec") / "raw")


@pytest.fixture(scope="module")
def reference(raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "out"
    build_corpus([raw], out, CONFIG, progress=False)
    return output_bytes(out)


def test_shards_are_contiguous_and_independent_of_workers(raw):
    files = list_input_files([raw])
    shards = shard_files(files)
    assert [f for shard in shards for f in shard] == files and len(shards) == len(files)
    assert [len(s) for s in shard_files(files, max_shards=4)] == [5, 5, 5, 2]


def test_two_workers_give_byte_identical_output(raw, reference, tmp_path):
    out = tmp_path / "out"
    report = build_corpus([raw], out, CONFIG.model_copy(update={"workers": 2}), progress=False)
    assert output_bytes(out) == reference
    # The read counter and "返回列表" are page chrome (removed per page, counted per rule); the body lines,
    # alike once digits are masked, are counted as boilerplate across all six shards.
    assert report.page_chrome_lines["rules"] == {"view_counter": 6, "page_actions": 6}
    assert report.boilerplate_top[0]["docs"] == 6
    assert not (out / ".work").exists()


def test_interrupted_run_resumes_without_recomputing(raw, reference, tmp_path, monkeypatch):
    out = tmp_path / "out"
    calls: list[tuple[str, int]] = []
    real = executor.run_shard

    def crash_after_five(task):
        if len(calls) == 5:
            raise KeyboardInterrupt("simulated kill")
        calls.append((task.phase, task.index))
        real(task)

    monkeypatch.setattr(executor, "run_shard_hook", crash_after_five)
    with pytest.raises(KeyboardInterrupt):
        build_corpus([raw], out, CONFIG, progress=False)
    done = sorted((out / ".work" / "read").glob("*.done"))
    assert len(done) == 5 and not (out / "report.json").exists()

    calls.clear()
    monkeypatch.setattr(executor, "run_shard_hook", lambda task: (calls.append((task.phase, task.index)), real(task)))
    build_corpus([raw], out, CONFIG, progress=False)
    n = len(list_input_files([raw]))
    read_calls = sorted(i for phase, i in calls if phase == "read")
    assert read_calls == list(range(5, n))  # the five finished shards were not read again
    assert output_bytes(out) == reference  # no loss, no duplicates, same report


def test_kill_9_then_rerun_with_two_workers(raw, reference, tmp_path):
    out = tmp_path / "out"
    script = f"""
import os, signal, sys
sys.path.insert(0, {str(SRC)!r})
from pathlib import Path
from wattlm.data import DataConfig, build_corpus
from wattlm.data.executors import local as executor
real, count = executor.run_shard, [0]
def hook(task):
    if task.phase == "clean" and count[0] == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    count[0] += task.phase == "clean"
    real(task)
executor.run_shard_hook = hook
config = DataConfig.model_validate_json({CONFIG.model_dump_json()!r})
build_corpus([Path({str(raw)!r})], Path({str(out)!r}), config, progress=False)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    assert len(list((out / ".work" / "clean").glob("*.done"))) == 3
    assert not (out / "report.json").exists()
    build_corpus([raw], out, CONFIG.model_copy(update={"workers": 2}), progress=False)
    assert output_bytes(out) == reference


def test_changed_settings_or_inputs_start_over(raw, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real = executor.run_shard
    ran: list[int] = []

    def stop_after_three(task):
        if len(ran) == 3:
            raise KeyboardInterrupt
        ran.append(task.index)
        real(task)

    monkeypatch.setattr(executor, "run_shard_hook", stop_after_three)
    with pytest.raises(KeyboardInterrupt):
        build_corpus([raw], out, CONFIG, progress=False)
    ran.clear()
    monkeypatch.setattr(executor, "run_shard_hook", lambda task: (ran.append(task.index), real(task)))
    other = DataConfig(min_chars=30, heldout_fraction=0.2, shard_docs=3)  # stale intermediate results must not be reused
    report = build_corpus([raw], out, other, progress=False)
    n = len(list_input_files([raw]))
    assert len(ran) == 2 * n
    fresh = build_corpus([raw], tmp_path / "fresh", other, progress=False)
    assert report == fresh
    # Shard count, output format and worker count do not invalidate the intermediate results.
    assert executor.fingerprint(CONFIG, list_input_files([raw])) == executor.fingerprint(
        CONFIG.model_copy(update={"workers": 3, "output_format": "parquet"}), list_input_files([raw]))


def test_all_cores_setting(raw, reference, tmp_path):
    assert executor.resolve_workers(0) == (os.cpu_count() or 1)
    report = json.loads(reference["report.json"])
    out = tmp_path / "out"
    again = build_corpus([raw], out, CONFIG.model_copy(update={"workers": 0}), progress=False)
    assert again.to_dict() == report
    assert DataConfig().workers == 1 and DataConfig().output_format == "jsonl"


def test_forkserver_preload_warms_every_step_and_survives_a_failing_hook(monkeypatch):
    """executors/preload.py (what the pool's forkserver imports) runs each step class's `preload`; one that
    raises is skipped, so the server (and the pool) still starts."""
    import importlib
    import sys

    from trafilatura import external

    from wattlm.data.steps import STEPS
    from wattlm.data.transforms import language

    def broken(cls):
        raise RuntimeError("a changed library")

    monkeypatch.setattr(STEPS["normalize"], "preload", classmethod(broken))
    sys.modules.pop(executor.PRELOAD, None)
    importlib.import_module(executor.PRELOAD)
    sys.modules.pop(executor.PRELOAD, None)
    assert external.JT_STOPLIST is not None  # extract_html's: justext's stop lists
    assert language._identifier.cache_info().currsize == 1  # tag_language's: the model


def test_finished_in_order_yields_in_input_order_and_raises_a_later_failure_at_once(tmp_path, monkeypatch):
    """The dedup pass takes shards in input order whatever order they finish in, and a failing shard stops
    the run without waiting for the earlier ones still running."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    tasks = [executor.ShardTask("shard", i, str(tmp_path), "{}") for i in range(4)]
    finished: list[int] = []
    release = threading.Event()

    def later_first(task):  # shard 3 finishes first, shard 0 last
        if task.index < 3:
            assert release.wait(10)
        finished.append(task.index)
        if task.index == 3:
            release.set()

    monkeypatch.setattr(executor, "run_shard", later_first)
    with ThreadPoolExecutor(4) as pool:
        assert [task.index for task in executor.finished_in_order(tasks, pool)] == [0, 1, 2, 3]
    assert finished[0] == 3

    release.clear()
    finished.clear()

    def shard_3_fails(task):
        if task.index == 3:
            raise ValueError("shard 3 is broken")
        assert release.wait(10)
        finished.append(task.index)

    monkeypatch.setattr(executor, "run_shard", shard_3_fails)
    with ThreadPoolExecutor(4) as pool:
        with pytest.raises(ValueError, match="shard 3"):
            list(executor.finished_in_order(tasks, pool))
        assert finished == []  # raised while shards 0-2 were still running
        release.set()
