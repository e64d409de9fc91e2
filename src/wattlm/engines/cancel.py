"""A cancel flag for blocking engine work whose request is gone (timed out, client disconnected).

Scoring (echo/logprobs) and embeddings run in worker threads, behind a per-engine lock. Python cannot
stop a thread from outside, so the server sets the request's flag and the work checks it at its
natural steps (each generated token, each text, while waiting for the lock) and raises `Cancelled`,
which frees the lock at once instead of after the whole answer nobody will read.

The flag travels in a context variable set by whoever runs the work (`serve.workers.WorkerPool`, the
generation bridge), so engines need no extra argument; work run without one is never cancelled. Work
that blocks on something other than its own steps (a generation waiting for the batch scheduler's
next token) registers `on_cancel` to be woken.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from wattlm.errors import WattError


class CancelFlag:
    """A `threading.Event` that also runs callbacks (once, in the thread that sets it) when set."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    def set(self) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def is_set(self) -> bool:
        return self._event.is_set()

    def add_callback(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run `callback` when the flag is set (now, if it is); returns a function that unregisters it."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return lambda: self._discard(callback)
        callback()
        return lambda: None

    def _discard(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)


_FLAG: ContextVar[CancelFlag | None] = ContextVar("wattlm_cancel_flag", default=None)
LOCK_POLL_SECONDS = 0.05  # how often a worker waiting for an engine lock looks at its flag


class Cancelled(WattError):
    """The request this work belonged to is gone; nobody reads the result."""


@contextmanager
def cancel_scope(flag: CancelFlag) -> Iterator[None]:
    """Make `flag` the current work's cancel flag (in this thread) while the block runs."""
    token = _FLAG.set(flag)
    try:
        yield
    finally:
        _FLAG.reset(token)


def on_cancel(callback: Callable[[], None]) -> Callable[[], None]:
    """Run `callback` when the current work is cancelled (no-op without a flag); returns the unregister function."""
    flag = _FLAG.get()
    return flag.add_callback(callback) if flag is not None else _nothing


def _nothing() -> None:
    pass


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
