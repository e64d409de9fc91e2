"""Progress events from wherever long work happens, to whoever listens (a recorded job, a test).

A stage or the run layer calls `emit("train_step", step=3, steps=30, loss=2.1, tokens_per_s=240.0)`; the
call costs nothing when nobody listens. `watt run` listens while a job is recorded (`wattlm.run.recording`)
and writes the events to the job's rows, so the console shows a CLI run and a console run alike. This
module sits in the shared layer so any layer may emit without importing the layer that records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

Listener = Callable[[str, dict], None]
_listeners: list[Listener] = []


def emit(kind: str, **fields) -> None:
    """Hand one event to every listener; a listener's failure never stops the work that reports."""
    for listener in tuple(_listeners):
        try:
            listener(kind, fields)
        except Exception:  # noqa: BLE001 - progress is a side channel: the run matters more than its report
            pass


def stage_started(name: str, **fields) -> None:
    """The run entered stage `name` (the previous one, if any, has ended)."""
    emit("stage", stage=name, **fields)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Call `listener(kind, fields)` for every event emitted inside the block."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)
