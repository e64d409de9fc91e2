"""An in-process teacher that counts what it is paid for, and can die part-way like a killed run."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

from wattlm.synth.teachers.base import TeacherBase, TeacherPrompt

from .scripted import _content

MARKERS = ("alpha", "north", "south", "east", "west", "river")


class CountingTeacher(TeacherBase):
    """Answers each passage's good QA pair; `calls` counts answered prompts (each one a paid request).

    `die_after`: once that many prompts are answered, the next `complete` call ends the run before
    answering: by raising (`how="raise"`) or by SIGKILL of the whole process (`how="kill"`), as a crash
    or `kill -9` in the middle of a synthesis would. `log` gets one line per answered prompt, so a killed
    process's count survives it."""

    style = "chat"

    def __init__(self, die_after: int | None = None, how: str = "raise", log: Path | None = None) -> None:
        super().__init__(failures=Counter())
        self.calls, self.die_after, self.how, self.log = 0, die_after, how, log

    @property
    def name(self) -> str:
        return "counting-teacher"

    @property
    def registry_id(self) -> str | None:
        return None

    def describe(self) -> dict:
        return {"type": "counting"}

    def prepare(self) -> None:
        pass

    def close(self) -> None:
        pass

    def complete(self, prompts: list[TeacherPrompt]) -> list[str | None]:
        if self.die_after is not None and self.calls >= self.die_after:
            if self.how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError(f"teacher gone after {self.calls} replies")
        replies = []
        for prompt in prompts:
            marker = next(m for m in MARKERS if f"The {m} substation" in prompt.text)
            replies.append(_content("good", marker))
            self.calls += 1
            if self.log is not None:
                with open(self.log, "a") as fh:
                    fh.write(f"{marker}\n")
        return replies
