"""A cancel flag for blocking engine work whose request is gone (timed out, client disconnected).

Scoring (echo/logprobs) and embeddings run in worker threads, behind a per-engine lock. Python cannot
stop a thread from outside, so the server sets the request's flag and the work checks it at its
natural steps (each generated token, each text, while waiting for the lock) and raises `Cancelled`,
which frees the lock at once instead of after the whole answer nobody will read.

The flag travels in a context variable set by whoever runs the work (`serve.workers.WorkerPool`), so
engines need no extra argument; work run without one is never cancelled.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from wattlm.errors import WattError

_FLAG: ContextVar[threading.Event | None] = ContextVar("wattlm_cancel_flag", default=None)
LOCK_POLL_SECONDS = 0.05  # how often a worker waiting for an engine lock looks at its flag


class Cancelled(WattError):
    """The request this work belonged to is gone; nobody reads the result."""


@contextmanager
def cancel_scope(flag: threading.Event) -> Iterator[None]:
    """Make `flag` the current work's cancel flag (in this thread) while the block runs."""
    token = _FLAG.set(flag)
    try:
        yield
    finally:
        _FLAG.reset(token)


def cancelled() -> bool:
    flag = _FLAG.get()
    return flag is not None and flag.is_set()


def check() -> None:
    """Raise `Cancelled` if the current work's request is gone."""
    if cancelled():
        raise Cancelled("the request was cancelled")


@contextmanager
def holding(lock: threading.Lock) -> Iterator[None]:
    """`with lock:` that gives up (raises `Cancelled`) when the request goes away while it waits."""
    while not lock.acquire(timeout=LOCK_POLL_SECONDS):
        check()
    try:
        yield
    finally:
        lock.release()
