"""The teacher interface: prompts in, reply texts out, failures counted rather than raised.

A teacher answers either chat prompts (the text is sent as one user message) or completion prompts
(the text is continued as is); `style` says which, and the synthesis stage picks the prompt file form
to match. `complete` returns one entry per prompt, in order: the reply text, or None when the teacher
failed on it, with the reason counted in `failures` (http_500, timeout, empty_content, ...). A run
over thousands of chunks must survive a flaky endpoint, so nothing a teacher sends back raises.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

TeacherStyle = Literal["chat", "completion"]


@dataclass(frozen=True)
class TeacherPrompt:
    text: str
    max_tokens: int
    temperature: float
    stop: tuple[str, ...] = ()
    seed: int | None = None


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
