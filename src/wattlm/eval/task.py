"""The evaluation-task extension point: a task holds its items, scores a loaded model on them, and
declares its metrics with the direction that is better (gates and `watt eval compare` read that).

A new kind of task is one new file with a subclass plus one entry in `TASKS` (`eval/tasks.py`). Tasks
are built from files by `wattlm.eval.loaders`: a JSONL file goes to the kind whose `record_fields` its
first record has. Tasks carry fully rendered prompts, so their content hash changes whenever an item,
a template or a setting that changes the numbers does, and a stored score is only reused for exactly
the same task.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from wattlm.errors import WattError


@dataclass(frozen=True)
class Metric:
    """One score a task reports: which direction is better, and what it means (shown in docs and reports)."""

    higher_is_better: bool
    description: str = ""


def higher(description: str = "") -> Metric:
    return Metric(True, description)


def lower(description: str = "") -> Metric:
    return Metric(False, description)


class TaskSettings(BaseModel):
    """Run settings a caller (CLI or recipe) can set for every task it loads."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(8, ge=1, description="Sequences per forward pass (or per generate call).")
    max_new_tokens: int = Field(32, ge=1, description="Cap on generated tokens per QA answer.")
    num_fewshot: int | None = Field(None, ge=0, description="Solved examples before each prompt (None: the file's own, else 0).")
    limit: int | None = Field(None, ge=1, description="Use only the first N items (quick checks).")
    seq_len: int = Field(512, ge=8, description="Perplexity window in tokens.")
    max_tokens: int | None = Field(20000, ge=16, description="Perplexity: cap on evaluated tokens.")


class Task(ABC):
    kind: ClassVar[str]  # prefix of the stored metric names (mc, qa, ppl); no "_" or ":" in it
    metrics: ClassVar[dict[str, Metric]]  # every score evaluate() returns, by name
    record_fields: ClassVar[tuple[str, ...]] = ()  # the JSONL fields that mark a record of this kind

    def __init__(self, name: str):
        self.name = name

    @classmethod
    def from_records(cls, records: list[dict], path: Path, settings: TaskSettings, name: str) -> Task:
        """The task for a JSONL file whose first record has `record_fields` (records already cut to the limit)."""
        raise WattError(f"{path}: task kind {cls.kind} is not read from JSONL records")

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


def read_jsonl(path: Path) -> list[dict]:
    from wattlm.shared.records import jsonl_records

    records = list(jsonl_records(path))
    if not records:
        raise WattError(f"{path}: no records")
    return records


def with_fewshot(prompts: list[str], targets: list[str], delimiters: list[str], k: int, joiner: str) -> list[str]:
    """Each prompt preceded by the next k items (cyclically, never itself) with their answers filled in."""
    k = min(k, len(prompts) - 1)
    if k <= 0:
        return prompts
    out = []
    for i, prompt in enumerate(prompts):
        shots = [(i + j) % len(prompts) for j in range(1, k + 1)]
        out.append(joiner.join([*(prompts[s] + delimiters[s] + targets[s] for s in shots), prompt]))
    return out


def require_fields(record: dict, fields: dict[str, type | tuple], where: str) -> None:
    for name, kind in fields.items():
        if name not in record:
            raise WattError(f"{where}: missing field {name!r}")
        if not isinstance(record[name], kind):
            raise WattError(f"{where}: field {name!r} has the wrong type ({type(record[name]).__name__})")
