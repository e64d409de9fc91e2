"""The teacher extension point: prompts in, reply texts out, failures counted rather than raised.

A kind of teacher (a local GGUF model, an OpenAI-compatible endpoint, ...) is a class that meets the
`Teacher` protocol (most extend `TeacherBase`) plus one entry in `TEACHERS` (`teachers/resolve.py`):
a builder `(registry, config, spec) -> Teacher`, usually the class's `from_spec`.

A teacher answers either chat prompts (the text is sent as one user message) or completion prompts
(the text is continued as is); `style` says which, and the synthesis stage picks the prompt file form
to match. `complete` returns one entry per prompt, in order: the reply text, or None when the teacher
failed on it, with the reason counted in `failures` (http_500, timeout, empty_content, ...). A run
over thousands of chunks must survive a flaky endpoint, so nothing a teacher sends back raises.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:  # annotations only: no import at run time
    from wattlm.registry import Registry
    from wattlm.synth.config import SynthConfig

TeacherStyle = Literal["chat", "completion"]


@dataclass(frozen=True)
class TeacherPrompt:
    text: str
    max_tokens: int
    temperature: float
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class TeacherSpec:
    """The teacher a caller chose (CLI options, a recipe's task section), before it is built."""

    kind: str  # a key of TEACHERS: local, openai, ...
    ref: str | None = None  # local: a model/export name or id; openai: the endpoint URL; a new kind: its own
    model: str | None = None  # openai: the model name the endpoint serves
    n_ctx: int = 2048  # local: context per request
    n_threads: int | None = None  # local: llama.cpp threads


@dataclass
class TeacherBase:
    """Shared state: the failure counter and the reply/request tallies a stats file reports."""

    failures: Counter = field(default_factory=Counter)
    requests: int = 0
    replies: int = 0

    def fail(self, reason: str) -> None:
        self.failures[reason] += 1


class Teacher(Protocol):
    style: TeacherStyle
    failures: Counter
    requests: int
    replies: int

    @property
    def name(self) -> str:
        """Recorded on every synthesized example (`teacher` field)."""
        ...

    @property
    def registry_id(self) -> str | None:
        """The teacher's model artifact id when it is registered (a lineage edge), else None."""
        ...

    def describe(self) -> dict:
        """What identifies this teacher's outputs, for the cache key (endpoint and model, or GGUF)."""
        ...

    def prepare(self) -> None:
        """Settle `style` before the run is planned (an "auto" endpoint may probe the server)."""
        ...

    def complete(self, prompts: Sequence[TeacherPrompt]) -> list[str | None]:
        """Replies in prompt order; None for a failed prompt (its reason counted in `failures`)."""
        ...

    def close(self) -> None: ...


# What a TEACHERS entry is: how one kind is built from the run's settings and the caller's choice.
TeacherBuilder = Callable[["Registry", "SynthConfig", TeacherSpec], Teacher]
