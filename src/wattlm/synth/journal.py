"""Teacher replies written down as they arrive, so a crashed synthesis pays no teacher call twice.

The journal is a JSONL file in a work folder named by the synthesis cache key (`$WATT_HOME/runs/<key>/`):
one line per reply, `{"prompt": <hash of the whole prompt>, "reply": <text>}`, flushed and fsynced as it
is written. A rerun with the same key reads it back and sends the teacher only the prompts it has no
reply for. Failed requests (None) are not recorded: a rerun gives them another chance, which is what a
run that crashed because its endpoint went down needs. A line cut short by `kill -9` is dropped on open.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from wattlm.synth.teachers.base import Teacher, TeacherPrompt


def prompt_hash(prompt: TeacherPrompt, style: str) -> str:
    """Everything that makes a reply: the text, the sampling settings, the seed and the prompt form."""
    blob = json.dumps([style, asdict(prompt)], sort_keys=True, ensure_ascii=False, default=list)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class ReplyJournal:
    """An append-only record of teacher replies, keyed by prompt hash."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.replies: dict[str, str] = {}
        if self.path.exists():
            self._load()
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def _load(self) -> None:
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]  # a line cut short by a kill is not a reply
        if len(complete) != len(data):
            with open(self.path, "r+b") as fh:
                fh.truncate(len(complete))
        for line in complete.decode("utf-8").splitlines():
            record = json.loads(line)
            self.replies[record["prompt"]] = record["reply"]

    def record(self, key: str, reply: str) -> None:
        self.replies[key] = reply
        self._file.write(json.dumps({"prompt": key, "reply": reply}, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


class JournalledTeacher:
    """A teacher whose replies go through a journal: recorded ones are read back, not asked for again.

    Everything but `complete` is the wrapped teacher's own (style, name, failures, describe, ...)."""

    def __init__(self, teacher: Teacher, journal: ReplyJournal) -> None:
        self._teacher, self.journal = teacher, journal
        self.reused = 0  # replies read from the journal instead of asked for

    def __getattr__(self, attribute: str):
        return getattr(self._teacher, attribute)

    def complete(self, prompts: Sequence[TeacherPrompt]) -> list[str | None]:
        style = self._teacher.style
        keys = [prompt_hash(p, style) for p in prompts]
        missing = [i for i, key in enumerate(keys) if key not in self.journal.replies]
        if missing:
            fresh = self._teacher.complete([prompts[i] for i in missing])
            for i, reply in zip(missing, fresh, strict=True):
                if reply is not None:
                    self.journal.record(keys[i], reply)
        else:
            fresh = []
        answers = dict(zip(missing, fresh, strict=True))
        self.reused += len(prompts) - len(missing)
        return [answers[i] if i in answers else self.journal.replies[key] for i, key in enumerate(keys)]
