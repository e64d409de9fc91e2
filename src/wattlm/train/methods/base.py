"""The training-method extension point: a small base class; the table of methods is in `__init__.py`.

A method turns examples into batches and a batch into a `StepLoss`; the one loop (`train/loop.py`) does
the rest (optimizer, schedule, autocast, data parallelism, checkpoints, saving). What the stage must
provide for a method (chat records or texts, a teacher, replay text) is declared here, on the class,
so no code outside the table asks which method it is running.

A method's own recipe fields (e.g. distill's `kd_alpha`) live in its `Settings` model; they are
written flat in the `train:` section beside the shared fields of `TrainConfig`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict


@dataclass
class StepLoss:
    """One (shard of a) batch's loss, as sums: the loop divides by the scored count of the whole global
    batch, so one process and N processes compute the same mean."""

    total: object  # scalar tensor with grad: summed loss over scored positions
    n_scored: int  # positions that count in the mean (every position for cpt, answer tokens for sft)
    n_tokens: int  # positions processed (throughput counts padding and prompts too)
    parts: dict = field(default_factory=dict)  # named scalar sums logged beside the loss, e.g. kl, ce


class MethodSettings(BaseModel):
    """A method's own fields of the `train:` section (none by default)."""

    model_config = ConfigDict(extra="forbid")


class SharedSettings(Protocol):
    """The fields of `TrainConfig` a method may read (the shared loop settings)."""

    seq_len: int
    batch_size: int
    seed: int
    loss_chunk: int
    replay_ratio: float
    bf16: bool

    def method_settings(self) -> MethodSettings: ...


class TrainingMethod(ABC):
    """One way to train: `batches()` (an endless, seeded iterator of global batches), `loss(model, batch)`
    and `stats()` (what the training report shows about the data).

    The loop shards each global batch across processes, so a method never needs to know how many there
    are; every process builds the same batches from the same seed.
    """

    name: ClassVar[str]
    Settings: ClassVar[type[MethodSettings]] = MethodSettings
    examples: ClassVar[Literal["texts", "records"]] = "texts"  # documents, or JSON records (chat examples)
    uses_replay: ClassVar[bool] = False  # mixes `replay_texts` in at `replay_ratio`

    def __init__(self, tokenizer, examples: Sequence, config: SharedSettings, replay_texts: Sequence[str] = (),
                 settings: MethodSettings | None = None):
        self.config = config
        self.settings = settings if settings is not None else config.method_settings()

    @classmethod
    def reads(cls, settings: MethodSettings) -> Literal["texts", "records"]:
        """What the stage loads from the dataset for these settings."""
        return cls.examples

    @classmethod
    def teacher(cls, settings: MethodSettings) -> str | None:
        """The teacher model reference these settings need (registered name/id, packaged name, HF folder)."""
        return None

    @classmethod
    def from_config(cls, config: SharedSettings, tokenizer, examples: Sequence, replay_texts: Sequence[str] = (),
                    teacher_dir: Path | None = None) -> TrainingMethod:
        """The method for a run; `teacher_dir` is the HF folder of `teacher()`'s model, when it names one."""
        return cls(tokenizer, examples, config, replay_texts)

    @abstractmethod
    def batches(self) -> Iterator: ...

    @abstractmethod
    def loss(self, model, batch) -> StepLoss: ...

    def stats(self) -> dict:
        return {}
