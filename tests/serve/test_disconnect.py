"""Clients that hang up mid-stream (or while still queued) give their slot back.

Streaming clients ask for long answers, read a few chunks and close the connection; others give up
while their request still waits for a slot. Afterwards `/metrics` must show nothing running, nothing
queued and nothing in flight, the engine must have stopped generating for the departed clients long
before their `max_tokens`, and a new request must be answered at once. Run on a fake engine with a
bounded number of slots, and on the continuous-batching engine over the packaged SmolLM2.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from wattlm.engines.metrics import EngineMetrics
from wattlm.engines.params import GenerationChunk, SamplingParams
from wattlm.serve import create_app, running_server

from .fakes import FakeEngine


class SlottedEngine(FakeEngine):
    """`slots` generations at a time, `delay` seconds per " tick"; the rest wait, as in a real engine."""

    def __init__(self, slots: int, delay: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.metrics = EngineMetrics()
        self._slots = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._delay = delay
        self.running = self.waiting = self.generated = 0

    @property
    def counters(self) -> dict[str, int]:
        return {"generated_tokens": self.generated}

    def generate(self, prompt, params: SamplingParams) -> Iterator[GenerationChunk]:
        with self._lock:
            self.waiting += 1
        self._slots.acquire()
        with self._lock:
            self.waiting -= 1
            self.running += 1
        self.metrics.started()
        try:
            limit = params.max_tokens or self.context_length
            for produced in range(1, limit + 1):
                time.sleep(self._delay)
                with self._lock:
                    self.generated += 1
                yield GenerationChunk(" tick", None, 1, produced)
            yield GenerationChunk("", "length", 1, limit)
        finally:
            with self._lock:
                self.running -= 1
                self.closed += 1
            self._slots.release()
            self.metrics.ended()


def gauges(base_url: str, model: str) -> dict[str, float]:
    """The per-model figures of /metrics that say whether anything still holds the engine."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    found = {}
    for name in ("wattlm_requests_running", "wattlm_queue_depth", "wattlm_requests_in_flight",
                 "wattlm_generation_tokens_total"):
        match = re.search(rf'^{name}{{model="{re.escape(model)}"}} (\S+)$', text, re.MULTILINE)
        assert match, f"{name} missing from /metrics:\n{text}"
        found[name] = float(match.group(1))
    return found


def server_errors(caplog) -> list[str]:
    """Errors the server logged: a hang-up is routine and must not be reported as a failure."""
    return [record.getMessage() for record in caplog.records
            if record.levelno >= logging.ERROR and record.name.startswith("wattlm")]


def wait_for_idle(base_url: str, model: str, timeout: float = 60.0) -> dict[str, float]:
    """Poll /metrics until running, queued and in-flight are all 0 (or the timeout); return the last reading."""
    deadline = time.monotonic() + timeout
    while True:
        reading = gauges(base_url, model)
        idle = not (reading["wattlm_requests_running"] or reading["wattlm_queue_depth"]
                    or reading["wattlm_requests_in_flight"])
        if idle or time.monotonic() > deadline:
            return reading
        time.sleep(0.1)


async def hang_up_mid_stream(base_url: str, body: dict, chunks: int) -> int:
    """Stream, read `chunks` data events, then close the connection; return how many were read."""
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        async with client.stream("POST", "/v1/completions", json=body) as response:
            assert response.status_code == 200, await response.aread()
            seen = 0
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    seen += 1
                    if seen == chunks:
                        break
    return seen  # leaving both contexts closes the socket: the server sees a disconnect


async def give_up_while_queued(base_url: str, body: dict, patience: float) -> str:
    """Send a streaming request and abandon it if no response headers come within `patience` seconds."""
    timeout = httpx.Timeout(120, read=patience)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as client:
        try:
            async with client.stream("POST", "/v1/completions", json=body) as response:
                return f"answered {response.status_code}"  # admitted in time: hang up at once
        except httpx.ReadTimeout:
            return "gave up"


async def disconnect_crowd(base_url: str, body: dict, streaming: int, queued: int, chunks: int = 3) -> list:
    readers = [hang_up_mid_stream(base_url, body, chunks) for _ in range(streaming)]
    results = await asyncio.gather(*readers[: streaming // 2])
    # The second half starts while nothing is free, so the impatient ones below really queue.
    rest = asyncio.gather(*readers[streaming // 2:])
    await asyncio.sleep(0.2)
    quitters = await asyncio.gather(*(give_up_while_queued(base_url, body, 0.3) for _ in range(queued)))
    return [*results, *(await rest), *quitters]


def test_disconnected_streams_free_their_slots_on_the_fake(caplog):
    engine = SlottedEngine(slots=2, delay=0.01, name="slotted", context_length=100_000)
    max_tokens = 3000  # 30 s per answer if nobody aborted it
    body = {"model": "slotted", "prompt": "go", "max_tokens": max_tokens, "stream": True}
    with running_server(create_app({"slotted": engine})) as base_url:
        results = asyncio.run(disconnect_crowd(base_url, body, streaming=6, queued=3))
        assert results[:6] == [3] * 6
        reading = wait_for_idle(base_url, "slotted")
        assert reading["wattlm_requests_running"] == reading["wattlm_queue_depth"] == 0, reading
        assert reading["wattlm_requests_in_flight"] == 0, reading
        assert engine.running == engine.waiting == 0
        # Nine abandoned answers of 3000 tokens: aborted, they produced a few tokens each.
        assert engine.generated < max_tokens, engine.generated
        answer = httpx.post(f"{base_url}/v1/completions", json={**body, "stream": False, "max_tokens": 3}, timeout=60)
        assert answer.status_code == 200 and answer.json()["choices"][0]["finish_reason"] == "length"
    assert engine.closed == engine.metrics.requests  # every generation that started was closed
    assert server_errors(caplog) == []


@pytest.mark.integration
def test_disconnected_streams_free_their_slots_on_smollm2(batch_engine, caplog):
    max_tokens = 400
    body = {"model": "smol", "prompt": "The history of electricity began", "max_tokens": max_tokens, "stream": True,
            "temperature": 0.8, "ignore_eos": True}
    with running_server(create_app({"smol": batch_engine})) as base_url:
        before = gauges(base_url, "smol")["wattlm_generation_tokens_total"]
        # batch_engine has 4 slots: 8 streams fill them twice over and 2 more clients queue and give up.
        results = asyncio.run(disconnect_crowd(base_url, body, streaming=8, queued=2))
        assert results[:8] == [3] * 8
        reading = wait_for_idle(base_url, "smol")
        assert reading["wattlm_requests_running"] == reading["wattlm_queue_depth"] == 0, reading
        assert reading["wattlm_requests_in_flight"] == 0, reading
        assert (batch_engine.running, batch_engine.waiting) == (0, 0)
        generated = reading["wattlm_generation_tokens_total"] - before
        # Ten 400-token answers would be 4000 tokens; aborted, each stopped after a few steps.
        assert generated < 2 * max_tokens, generated
        answer = httpx.post(f"{base_url}/v1/completions",
                            json={**body, "stream": False, "max_tokens": 4, "ignore_eos": False}, timeout=120)
        assert answer.status_code == 200 and answer.json()["usage"]["completion_tokens"] >= 1
    assert server_errors(caplog) == []
