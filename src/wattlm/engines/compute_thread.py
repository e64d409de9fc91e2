"""One thread runs every llama.cpp computation of the process: batch schedulers' steps and one-off calls.

llama-cpp-python's wheels build ggml with OpenMP. Every OS thread that computes a llama.cpp graph gets an
OpenMP thread pool of its own, which lives as long as that thread, and ggml waits at an OpenMP barrier after
each operation of the graph. Once the pools of a process hold more threads than there are cores, libgomp
stops spinning at barriers and sleeps on a futex instead, so each of the hundreds of barriers per token
costs a sleep and a wake-up. Measured on this 2-core machine (SmolLM2 Q4_1, one greedy stream through the
batch engine): 155 tok/s, then 89 tok/s for as long as the thread that had served one embeddings request
lived; 139 tok/s, then 53 tok/s once a second engine (with its own scheduler thread) had decoded once.
`OMP_WAIT_POLICY=active` restores the speed but keeps a core spinning while the server is idle.

So nothing in the process computes a graph on any other thread: a batch scheduler registers itself here
and is stepped by this thread, round-robin with other schedulers (several models, LoRA adapters), and the
scoring and embedding contexts hand their `llama_decode` calls over through `call()`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from concurrent.futures import Future
from typing import Protocol

log = logging.getLogger(__name__)


class Stepped(Protocol):
    """A client stepped by the compute thread (a batch scheduler)."""

    def has_work(self) -> bool: ...  # read under the compute thread's lock: cheap, no locking of its own

    def step(self) -> None: ...  # one unit of work on the compute thread; raises nothing


class ComputeThread:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._clients: list[Stepped] = []
        self._calls: deque[tuple[Future, object, tuple, dict]] = deque()
        self._thread: threading.Thread | None = None

    # ---- any thread ------------------------------------------------------------------------------

    def add(self, client: Stepped) -> None:
        with self._cond:
            self._clients.append(client)
            self._start()
            self._cond.notify()

    def discard(self, client: Stepped) -> None:
        """Stop stepping `client`. On the compute thread (from its own `step`) it takes effect at once;
        from another thread it waits until any step of it in progress has finished."""
        if self.on_thread():
            with self._cond:
                if client in self._clients:
                    self._clients.remove(client)
        else:
            self.call(self.discard, client)

    def wake(self) -> None:
        """A client has new work (a request, a cancel, a shutdown)."""
        with self._cond:
            self._cond.notify()

    def call(self, fn, *args, **kwargs):
        """`fn(*args, **kwargs)` on the compute thread, between steps; its result, or its exception raised here."""
        if self.on_thread():
            return fn(*args, **kwargs)
        future: Future = Future()
        with self._cond:
            self._calls.append((future, fn, args, kwargs))
            self._start()
            self._cond.notify()
        return future.result()

    def on_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    # ---- the compute thread ------------------------------------------------------------------------

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="wattlm-llama-compute", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:  # each client's has_work() read once per round
                    busy = [client for client in self._clients if client.has_work()]
                    if busy or self._calls:
                        break
                    self._cond.wait()
                calls, self._calls = list(self._calls), deque()
            for future, fn, args, kwargs in calls:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args, **kwargs))
                    except BaseException as error:  # noqa: BLE001 -- handed to the caller's thread
                        future.set_exception(error)
            for client in busy:
                try:
                    client.step()
                except Exception:  # noqa: BLE001 -- a client's bug must not stop every other client's work
                    log.exception("compute thread: a step raised")


_shared: tuple[int, ComputeThread] | None = None
_shared_lock = threading.Lock()


def compute_thread() -> ComputeThread:
    """The process's compute thread (a forked child gets its own: the parent's thread is not in it)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared[0] != os.getpid():
            _shared = (os.getpid(), ComputeThread())
        return _shared[1]


def compute(fn, *args, **kwargs):
    """`fn(*args, **kwargs)` on the process's compute thread: for any call that makes llama.cpp compute."""
    return compute_thread().call(fn, *args, **kwargs)


def iterate(iterator):
    """The items of `iterator`, each `next()` taken on the compute thread (llama-cpp-python's token
    generator decodes inside `next()`)."""
    done = object()
    while (item := compute(next, iterator, done)) is not done:
        yield item
