"""Bounded worker pools for the blocking work of a request, with a cancel flag per job.

Scoring (echo/logprobs), embeddings and tokenizer calls block for as long as the engine needs;
`asyncio.to_thread` ran them on the event loop's shared executor (6 threads on 2 cores), where they
kept going after a 504 and queued without bound, and a burst of them delayed every other thread job,
API-key lookups included. Each kind now has its own `WorkerPool`:

- `workers` threads run jobs; at most `queue` more wait; a job beyond that is refused at once with
  `EngineOverloaded` (503 + Retry-After, which the OpenAI clients wait out and retry);
- when the awaiting request is cancelled (request timeout, client gone) its job's flag is set: a
  queued job never starts, a running one stops at its next check (`wattlm.engines.cancel`), which
  frees the engine's lock.

API-key lookups have a pool of their own on `KeyAuth`, so hundreds of scoring requests cannot stall
authentication. The pools of an app are `app.state.pools`; `current_pools()` is what the request being
served uses (set per request by `PoolsMiddleware`; a process-wide default outside an app).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from wattlm.engines import cancel
from wattlm.engines.base import EngineOverloaded

T = TypeVar("T")


class WorkerPool:
    """`workers` threads, at most `queue` jobs waiting; `await pool.run(fn, *args)` runs `fn` in one."""

    def __init__(self, name: str, workers: int, queue: int, retry_after: int = 1) -> None:
        if workers < 1 or queue < 0:
            raise ValueError(f"pool {name}: workers must be >= 1 and queue >= 0, got {workers}, {queue}")
        self.name, self.workers, self.queue, self.retry_after = name, workers, queue, retry_after
        self._executor: ThreadPoolExecutor | None = None  # made on first use, again after `close` (app restarts)
        self._lock = threading.Lock()
        self._pending = 0  # running + queued
        self._running = 0
        self.refused = 0  # jobs refused because the pool and its queue were full

    @property
    def pending(self) -> int:
        """Jobs running or waiting now."""
        return self._pending

    @property
    def running(self) -> int:
        return self._running

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            if self._pending >= self.workers + self.queue:
                self.refused += 1
                raise EngineOverloaded(f"the server is busy: {self.workers} {self.name} jobs running and {self.queue} "
                                       "waiting; retry shortly", self.retry_after)
            self._pending += 1
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=f"wattlm-{self.name}")
            executor = self._executor
        flag = cancel.CancelFlag()
        future = executor.submit(self._call, flag, fn, args)
        future.add_done_callback(self._done)  # also runs for a job cancelled before it started
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            flag.set()  # a running job stops at its next check; a queued one never starts
            future.cancel()
            raise

    def _call(self, flag: cancel.CancelFlag, fn: Callable[..., T], args: tuple) -> T:
        with self._lock:
            self._running += 1
        try:
            with cancel.cancel_scope(flag):
                cancel.check()
                return fn(*args)
        finally:
            with self._lock:
                self._running -= 1

    def _done(self, future: Future) -> None:
        with self._lock:
            self._pending -= 1

    def close(self) -> None:
        """Stop the threads (waiting jobs are dropped); a later `run` starts new ones."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


@dataclass
class Pools:
    """The worker pools of one app (sizes: docs/security.md)."""

    scoring: WorkerPool = field(default_factory=lambda: WorkerPool("scoring", 2, 32))
    embeddings: WorkerPool = field(default_factory=lambda: WorkerPool("embeddings", 2, 32))
    tokenizer: WorkerPool = field(default_factory=lambda: WorkerPool("tokenizer", 2, 64))
    loading: WorkerPool = field(default_factory=lambda: WorkerPool("model-load", 2, 64))  # lookups and loads

    def all(self) -> list[WorkerPool]:
        return [self.scoring, self.embeddings, self.tokenizer, self.loading]

    def close(self) -> None:
        for pool in self.all():
            pool.close()


_DEFAULT: Pools | None = None
_CURRENT: ContextVar[Pools | None] = ContextVar("wattlm_pools", default=None)


def current_pools() -> Pools:
    """The pools of the app serving this request (or the process-wide default, made on first use)."""
    global _DEFAULT
    pools = _CURRENT.get()
    if pools is not None:
        return pools
    if _DEFAULT is None:
        _DEFAULT = Pools()
    return _DEFAULT


class PoolsMiddleware:
    """ASGI middleware: the request's handlers see the app's pools through `current_pools()`."""

    def __init__(self, app: Any, pools: Pools) -> None:
        self.app, self.pools = app, pools

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        token = _CURRENT.set(self.pools)
        try:
            await self.app(scope, receive, send)
        finally:
            _CURRENT.reset(token)
