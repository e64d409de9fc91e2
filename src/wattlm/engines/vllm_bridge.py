"""The asyncio side of `VllmEngine`: vLLM's engine on its own event loop, fed by blocking request threads.

vLLM's `AsyncLLMEngine` is asyncio-native; our engines are blocking iterators run in worker threads.
`VllmBridge` owns one loop in a daemon thread, builds vLLM's engine on it, and turns one request into
a blocking iterator of vLLM's `RequestOutput`s (`outputs`): a coroutine on the loop iterates
`engine.generate(...)` and puts each output on a thread-safe queue that the request thread reads.
Admission (`max_seqs + max_waiting` in flight, else `EngineOverloaded`), abort on early close or on
the client going away, and the token counters live here, shared by a base engine and its adapters.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

from wattlm.engines import cancel
from wattlm.engines.base import EngineOverloaded
from wattlm.engines.metrics import EngineMetrics
from wattlm.errors import WattError

_DONE = object()  # the pump's end marker, after the last output
ABORT_WAIT_SECONDS = 5.0  # how long an early close waits for vLLM to confirm the abort


class EventLoopThread:
    """An asyncio loop running in a daemon thread; other threads submit coroutines to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="wattlm-vllm-loop", daemon=True)
        self._thread.start()

    def submit(self, coroutine):
        """A `concurrent.futures.Future` of `coroutine` run on the loop."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def run(self, coroutine, timeout: float | None = None):
        return self.submit(coroutine).result(timeout)

    def stop(self) -> None:
        """Cancel what still runs on the loop (requests of a closed engine), then stop and close it."""
        try:
            self.run(self._cancel_tasks(), timeout=10)
        except Exception:  # noqa: BLE001 -- a loop that cannot even cancel is stopped all the same
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


    @staticmethod
    async def _cancel_tasks() -> None:
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class VllmBridge:
    """vLLM's engine over `model_dir`, its loop, its tokenizer, the admission count and token counters."""

    def __init__(self, vllm, model_dir: Path, n_ctx: int, max_seqs: int, max_waiting: int, max_loras: int = 0,
                 max_lora_rank: int = 64, gpu_memory_utilization: float = 0.9) -> None:
        self.vllm = vllm
        self.n_ctx, self.max_seqs, self.max_waiting, self.max_loras = n_ctx, max_seqs, max_waiting, max_loras
        lora_args = {"max_loras": max_loras, "max_lora_rank": max_lora_rank} if max_loras else {}
        args = vllm.AsyncEngineArgs(
            model=str(model_dir), max_model_len=n_ctx, max_num_seqs=max_seqs, enable_prefix_caching=True,
            enable_lora=max_loras > 0, gpu_memory_utilization=gpu_memory_utilization, **lora_args,
        )
        self.loop = EventLoopThread()
        try:
            # Built on the loop: vLLM starts its output handler on the loop it is created or first used on.
            self.engine = self.loop.run(self._start(args))
            tokenizer = self.engine.get_tokenizer()  # a method on vLLM's v1 engine, a coroutine on v0's
            self.tokenizer = self.loop.run(tokenizer) if inspect.isawaitable(tokenizer) else tokenizer
        except BaseException:
            self.loop.stop()
            raise
        self.lock = threading.Lock()
        self.in_flight = 0
        self.counters = {"prompt_tokens": 0, "reused_prompt_tokens": 0, "generated_tokens": 0}
        self.users = 1  # engines (a base and its adapters) over this bridge; the last close shuts vLLM down
        self._waiting_threads: set[queue.SimpleQueue] = set()  # event queues of requests in flight
        self._shut_down = False
        self._lora_ids = itertools.count(1)  # vLLM wants a unique positive int per adapter
        self._request_ids = itertools.count()

    async def _start(self, args):
        return self.vllm.AsyncLLMEngine.from_engine_args(args)

    def next_lora_id(self) -> int:
        return next(self._lora_ids)

    def count(self, prompt: int, reused: int, generated: int) -> None:
        with self.lock:
            self.counters["prompt_tokens"] += prompt
            self.counters["reused_prompt_tokens"] += reused
            self.counters["generated_tokens"] += generated

    def outputs(self, tokens: list[int], sampling, lora=None, metrics: EngineMetrics | None = None) -> Iterator:
        """vLLM's `RequestOutput`s of one request, up to the finished one (a generator: nothing happens
        before the first `next()`). Closed early, or woken by the request's cancel flag while it waits,
        it aborts the request in vLLM; either way it frees the request's place."""
        with self.lock:
            if self.in_flight >= self.max_seqs + self.max_waiting:
                raise EngineOverloaded(f"server busy: {self.in_flight} requests in flight (max_seqs "
                                       f"{self.max_seqs} + max_waiting {self.max_waiting}); retry later")
            self.in_flight += 1
            events: queue.SimpleQueue = queue.SimpleQueue()
            self._waiting_threads.add(events)
        request_id = f"wattlm-{next(self._request_ids)}"
        pump = self.loop.submit(self._pump(request_id, tokens, sampling, lora, events))
        if metrics is not None:
            metrics.started()
        unwatch = cancel.on_cancel(lambda: events.put(cancel.Cancelled("the request was cancelled")))
        finished = False
        try:
            while not finished:
                output = events.get()
                if isinstance(output, BaseException):
                    raise output
                if output is _DONE:
                    raise WattError("vLLM ended the request without a final output")
                finished = output.finished
                yield output
        finally:
            unwatch()
            if not finished:
                self._abort(request_id)
                pump.cancel()
            with self.lock:
                self.in_flight -= 1
                self._waiting_threads.discard(events)
            if metrics is not None:
                metrics.ended()

    async def _pump(self, request_id: str, tokens: list[int], sampling, lora, events: queue.SimpleQueue) -> None:
        try:
            # A TokensPrompt: we tokenized (and checked the length) ourselves.
            async for output in self.engine.generate({"prompt_token_ids": tokens}, sampling, request_id,
                                                     lora_request=lora):
                events.put(output)
        except asyncio.CancelledError:
            events.put(cancel.Cancelled("the request was cancelled"))
            raise
        except Exception as error:  # noqa: BLE001 -- a vLLM failure ends this request, not the server
            events.put(WattError(f"vLLM refused or failed the request: {type(error).__name__}: {error}"))
        else:
            events.put(_DONE)

    def _abort(self, request_id: str) -> None:
        if self._shut_down:  # vLLM is gone, and with it the request
            return
        try:
            self.loop.run(self.engine.abort(request_id), timeout=ABORT_WAIT_SECONDS)
        except Exception:  # noqa: BLE001 -- a dead engine or a slow abort: the request is abandoned either way
            pass

    def shutdown(self) -> None:
        """Stop vLLM; requests still in flight end with an error instead of waiting forever."""
        with self.lock:
            self._shut_down = True
            for events in self._waiting_threads:
                events.put(WattError("the engine was shut down"))
        shutdown = getattr(self.engine, "shutdown", None)
        if shutdown is not None:
            shutdown()
        self.loop.stop()
