"""The evaluation task interface: a task holds its items, and scores a loaded model on them.

A new kind of task is one new file with a subclass. Tasks are built by `wattlm.eval.loaders` from
files; they carry fully rendered prompts, so their content hash changes whenever an item, a template
or a setting that changes the numbers does, and a stored score is only reused for exactly the same task.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from typing import ClassVar


class Task(ABC):
    kind: ClassVar[str]  # prefix of the stored metric names: mc, qa, ppl

    def __init__(self, name: str):
        self.name = name

    @abstractmethod
    def evaluate(self, model, tokenizer) -> dict[str, float]:
        """Scores of a loaded causal LM (and its tokenizer) on this task, named without the task prefix."""

    @abstractmethod
    def content(self) -> object:
        """Everything that determines the scores besides the model (JSON-able): items and settings."""

    @property
    def size(self) -> int:
        return len(self.items)  # type: ignore[attr-defined]

    def content_hash(self) -> str:
        blob = json.dumps([self.kind, self.content()], sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def metric_name(self, score: str) -> str:
        """The stable name a score is stored under on the model artifact, e.g. `qa:grid-qa:char_f1`."""
        return f"{self.kind}:{self.name}:{score}"
