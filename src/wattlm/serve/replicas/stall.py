"""The bound on waiting for a replica: one thread per model cancels streams whose replica went silent.

Serve's streaming handle has no timeout of its own, and a replica can hang without dying (a stopped
process, a wedged node): its requests would wait for ever. Each stream registers a `Watch` and touches it
on every chunk; the watcher thread cancels a stream not touched for `timeout` seconds, which makes its
handle raise, and the ingress turns that into `ReplicaLost`. The same thread runs cancellations asked for
from the event loop (a client gone), which must not block there on Ray calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Watch:
    """One stream's deadline; `stalled_after` is set once the watcher cancelled it for silence."""

    def __init__(self, watcher: StallWatcher, cancel: Callable[[], None], clock: Callable[[], float]) -> None:
        self._watcher, self._cancel, self._clock = watcher, cancel, clock
        self.started = self.last_seen = clock()
        self.stalled_after: float | None = None
        self.cancel_requested = False

    def touch(self) -> None:
        self.last_seen = self._clock()

    def cancel_soon(self) -> None:
        """Cancel from the watcher thread, promptly (callable from any thread, the event loop included)."""
        self.cancel_requested = True
        self._watcher.wake()

    def stop(self) -> None:
        self._watcher.forget(self)

    def run_cancel(self) -> None:
        try:
            self._cancel()
        except Exception:  # noqa: BLE001 -- a replica already gone cannot be cancelled; nothing to undo
            log.debug("cancelling a replica request failed", exc_info=True)


class StallWatcher:
    """Watches every open stream of one replicated model (started with the first, idle without any)."""

    def __init__(self, timeout: float, poll: float = 0.25, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout, self._poll, self._clock = timeout, poll, clock
        self._watches: set[Watch] = set()
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def watch(self, cancel: Callable[[], None]) -> Watch:
        watch = Watch(self, cancel, self._clock)
        with self._lock:
            self._watches.add(watch)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="wattlm-replica-stall", daemon=True)
                self._thread.start()
        return watch

    def forget(self, watch: Watch) -> None:
        with self._lock:
            self._watches.discard(watch)

    def wake(self) -> None:
        self._wakeup.set()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    def check(self) -> list[Watch]:
        """Cancel the streams past their deadline or asked to stop; the ones cancelled (the loop's step)."""
        now = self._clock()
        with self._lock:
            due = [watch for watch in self._watches
                   if watch.cancel_requested or now - watch.last_seen >= self.timeout]
            self._watches.difference_update(due)
        for watch in due:
            if not watch.cancel_requested:
                watch.stalled_after = self.timeout
            watch.run_cancel()
        return due

    def _run(self) -> None:
        while not self._closed:
            self._wakeup.wait(self._poll)
            self._wakeup.clear()
            self.check()
