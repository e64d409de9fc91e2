"""synthesize() through the one cache path: resumable after a crash, no teacher reply paid for twice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from wattlm.data.stage import text_dataset
from wattlm.registry import Registry
from wattlm.synth.config import SynthConfig
from wattlm.synth.stage import synth_key, synthesize

from .fake_teacher import MARKERS, CountingTeacher
from .scripted import passage_doc

REPO = Path(__file__).resolve().parents[2]
# concurrency 1: the teacher is asked two prompts at a time, so a run of six passages has three batches.
CONFIG = SynthConfig(questions_per_chunk=1, concurrency=1, heldout_fraction=0.0, style="chat")


def write_docs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for marker in MARKERS:
        (folder / f"{marker}.txt").write_text(passage_doc(marker), encoding="utf-8")
    return folder


def rows(art) -> list[str]:
    return sorted((art.path / "train" / "shard-00000.jsonl").read_text().splitlines())


def uninterrupted(tmp_path) -> tuple[int, list[str]]:
    registry = Registry(tmp_path / "ws-whole")
    teacher = CountingTeacher()
    art, _ = synthesize(registry, text_dataset(registry, write_docs(tmp_path / "docs"), "docs"), teacher, CONFIG,
                        progress=False)
    return teacher.calls, rows(art)


def test_a_crashed_run_reuses_every_recorded_reply(tmp_path):
    whole_calls, whole_rows = uninterrupted(tmp_path)
    assert whole_calls == len(MARKERS)

    registry = Registry(tmp_path / "ws")
    docs = text_dataset(registry, write_docs(tmp_path / "docs"), "docs")
    crashed = CountingTeacher(die_after=4)
    with pytest.raises(RuntimeError, match="teacher gone"):
        synthesize(registry, docs, crashed, CONFIG, progress=False)
    assert registry.list("dataset") == [docs]  # nothing half-registered
    journal = registry.home / "runs" / synth_key(registry, docs, crashed, CONFIG) / "replies.jsonl"
    assert len(journal.read_text().splitlines()) == 4

    rerun = CountingTeacher()
    art, reused = synthesize(registry, docs, rerun, CONFIG, progress=False)
    assert not reused
    assert crashed.calls + rerun.calls == whole_calls  # the rerun asked only the two unanswered prompts
    assert rows(art) == whole_rows  # and made the same examples as the uninterrupted run
    assert not journal.parent.exists()  # the work folder goes once the dataset is registered


CHILD = """
import sys
from pathlib import Path
from wattlm.registry import Registry
from wattlm.data.stage import text_dataset
from tests.synth.fake_teacher import CountingTeacher
from tests.synth.test_stage import CONFIG
from wattlm.synth.stage import synthesize

home, docs, log, die_after = sys.argv[1:5]
registry = Registry(Path(home))
teacher = CountingTeacher(die_after=int(die_after) if die_after != "none" else None, how="kill", log=Path(log))
art, reused = synthesize(registry, text_dataset(registry, Path(docs), "docs"), teacher, CONFIG, progress=False)
print(art.id, reused)
"""


def test_kill_9_mid_run_then_rerun_pays_each_reply_once(tmp_path):
    whole_calls, whole_rows = uninterrupted(tmp_path)
    docs, log, home = write_docs(tmp_path / "docs"), tmp_path / "paid.log", tmp_path / "ws"

    def child(die_after: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", CHILD, str(home), str(docs), str(log), die_after],
                              capture_output=True, text=True, cwd=REPO, timeout=300)

    killed = child("2")
    assert killed.returncode == -9, killed.stderr
    assert len(log.read_text().splitlines()) == 2
    done = child("none")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[1] == "False"
    assert len(log.read_text().splitlines()) == whole_calls  # no reply was paid for twice
    art = Registry(home).get(done.stdout.split()[0])
    assert rows(art) == whole_rows
    assert json.loads((art.path / "stats.json").read_text())["requests"] == len(MARKERS)
