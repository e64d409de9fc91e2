"""Where a run's time goes: nested, named spans, recorded while a `Timeline` is active.

`watt run` (run/pipeline.py) opens one timeline and a span per stage; a stage marks its own sub-steps
with `timed("load model")`, which records only when a timeline is active, so a stage called from its
own CLI verb or a test pays nothing and needs no timeline argument. Spans keep the order they started
in and their depth, so the run report draws them as a Gantt chart and a JSON reader rebuilds the tree.

The active timeline is a context variable: threads a stage starts (synthesis workers, a server)
record nothing, and two runs in one process (tests) do not mix their spans.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass

from wattlm.shared.progress import stage_started


@dataclass
class Span:
    name: str
    depth: int  # 0 for a stage, 1 for its sub-steps, ...
    start: float  # seconds since the timeline began
    seconds: float | None = None  # None while the span is open
    note: str = ""  # e.g. "cached" when the stage found its artifact

    def to_dict(self) -> dict:
        return asdict(self)


class Timeline:
    def __init__(self) -> None:
        self.origin = time.perf_counter()
        self.spans: list[Span] = []
        self._open: list[Span] = []

    def elapsed(self) -> float:
        return time.perf_counter() - self.origin

    @contextmanager
    def span(self, name: str) -> Iterator[Span]:
        """A span from entry to exit (an exception still closes it, so a failed stage shows its time)."""
        span = Span(name, len(self._open), round(self.elapsed(), 3))
        if span.depth == 0:  # a stage: a recorded job shows it as the run's current stage
            stage_started(name)
        self.spans.append(span)
        self._open.append(span)
        try:
            yield span
        finally:
            span.seconds = round(self.elapsed() - span.start, 3)
            self._open.remove(span)

    def to_list(self) -> list[dict]:
        return [s.to_dict() for s in self.spans]

    def stage_seconds(self) -> dict[str, float]:
        """Seconds of each top-level span, summed by name (a stage run twice counts once, with both)."""
        totals: dict[str, float] = {}
        for span in self.spans:
            if span.depth == 0 and span.seconds is not None:
                totals[span.name] = round(totals.get(span.name, 0.0) + span.seconds, 1)
        return totals


_ACTIVE: ContextVar[Timeline | None] = ContextVar("wattlm_timeline", default=None)


@contextmanager
def recording(timeline: Timeline) -> Iterator[Timeline]:
    """Make `timeline` the one `timed` records into, for the duration of the block."""
    token = _ACTIVE.set(timeline)
    try:
        yield timeline
    finally:
        _ACTIVE.reset(token)


@contextmanager
def timed(name: str) -> Iterator[Span | None]:
    """A span named `name` in the active timeline (nested in the span open around it); None without one."""
    timeline = _ACTIVE.get()
    if timeline is None:
        yield None
        return
    with timeline.span(name) as span:
        yield span
