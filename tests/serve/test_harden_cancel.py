"""Work that outlived its request, against SmolLM2 on the batch engine in its own process.

Before: a non-streaming client that hung up left its answer decoding (a batch slot held for up to
`max_tokens`); a scoring or embeddings request that hit the request timeout (504) kept running in its
thread and kept the engine's scoring/embedding lock, so the next such request timed out behind it; a
failed load on demand told the client the server's file paths. Each is checked here by what the
client sees next, not by timing.
"""

from __future__ import annotations

import re
import time

import httpx
import pytest

from .test_harden import start_server, stop_server

SHORT_SCORING = {"model": "smol", "prompt": "The grid", "max_tokens": 1, "logprobs": 1, "echo": True}
SHORT_EMBEDDING = {"model": "smol", "input": ["the grid"]}
LONG_SCORING = {"model": "smol", "prompt": "The history of electricity began", "max_tokens": 480,
                "logprobs": 5, "temperature": 0.8, "ignore_eos": True}


def engine_gauges(served, key: str | None = None) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return parse_gauges(served.client.get("/metrics", headers=headers).text)


def parse_gauges(text: str) -> dict[str, float]:
    found = {}
    for name in ("wattlm_requests_running", "wattlm_queue_depth", "wattlm_requests_in_flight",
                 "wattlm_generation_tokens_total"):
        match = re.search(rf'^{name}{{model="smol"}} (\S+)$', text, re.MULTILINE)
        assert match, f"{name} missing from /metrics:\n{text}"
        found[name] = float(match.group(1))
    return found


def wait_until_idle(served, timeout: float = 120.0, key: str | None = None) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        reading = engine_gauges(served, key)
        busy = reading["wattlm_requests_running"] or reading["wattlm_queue_depth"] or reading["wattlm_requests_in_flight"]
        if not busy or time.monotonic() > deadline:
            return reading
        time.sleep(0.1)


@pytest.fixture(scope="module")
def patient(smollm2_path, tmp_path_factory):
    """Long answers allowed and a long request timeout: only a disconnect can stop them early."""
    pytest.importorskip("llama_cpp")
    home = tmp_path_factory.mktemp("patient-home")
    broken = home / "private-models" / "broken.gguf"
    broken.parent.mkdir()
    broken.write_bytes(b"GGUF" + b"\0" * 64)  # a header and nothing else: llama.cpp refuses it
    served = start_server(smollm2_path, home, {"WATT_TEST_MAX_TOKENS": "480", "WATT_TEST_TIMEOUT": "300",
                                               "WATT_TEST_BROKEN_GGUF": str(broken)})
    yield served
    stop_server(served)


@pytest.fixture(scope="module")
def impatient(smollm2_path, tmp_path_factory):
    """A 1.5 s request timeout: long enough for a short request, too short for a long one. 480 scored tokens
    take ~4 s on the quiet 2-core machine since scoring runs on the compute thread (over 60 s before, when
    its OpenMP pool beside the scheduler's made every barrier sleep: engines/compute_thread.py)."""
    pytest.importorskip("llama_cpp")
    served = start_server(smollm2_path, tmp_path_factory.mktemp("impatient-home"),
                          {"WATT_TEST_MAX_TOKENS": "480", "WATT_TEST_TIMEOUT": "1.5"})
    # The scoring and embedding contexts are created by their first request (seconds under load, and a
    # context being created cannot be cancelled): create them before the tests time anything.
    for path, body in (("/v1/completions", SHORT_SCORING), ("/v1/embeddings", SHORT_EMBEDDING)):
        for _ in range(10):
            if served.post(path, body).status_code == 200:
                break
    yield served
    stop_server(served)


def test_non_streaming_clients_that_hang_up_free_their_slots(patient):
    max_tokens, clients = 400, 4
    body = {"model": "smol", "prompt": "The history of electricity began", "max_tokens": max_tokens,
            "temperature": 0.8, "ignore_eos": True}
    before = engine_gauges(patient)["wattlm_generation_tokens_total"]
    import asyncio

    async def hang_up() -> str:
        # The client gives up after a second (a user closing the tab): the server must stop decoding for it.
        async with httpx.AsyncClient(base_url=patient.url, timeout=httpx.Timeout(60, read=1.0)) as client:
            try:
                response = await client.post("/v1/completions", json=body)
                return f"answered {response.status_code}"
            except httpx.ReadTimeout:
                return "hung up"

    async def crowd() -> list[str]:
        return list(await asyncio.gather(*(hang_up() for _ in range(clients))))

    assert asyncio.run(crowd()) == ["hung up"] * clients
    reading = wait_until_idle(patient)
    assert reading["wattlm_requests_running"] == reading["wattlm_queue_depth"] == 0, reading
    assert reading["wattlm_requests_in_flight"] == 0, reading
    generated = reading["wattlm_generation_tokens_total"] - before
    print(f"{clients} abandoned {max_tokens}-token answers generated {generated:.0f} tokens in all")
    assert generated < clients * max_tokens / 2, generated  # 1600 if every answer had run to its end
    answer = patient.post("/v1/completions", {**body, "max_tokens": 4, "ignore_eos": False})
    assert answer.status_code == 200, answer.text


def test_requests_that_leave_while_queued_give_their_place_back_at_once(patient):
    # Before, a queued request whose client left kept its queue place until a slot freed (its thread
    # waited for a first token); with both slots busy for long answers, the queue stayed full of the departed.
    import asyncio

    long_body = {"model": "smol", "prompt": "Once upon a time", "max_tokens": 480, "stream": True,
                 "temperature": 0.8, "ignore_eos": True}
    short_body = {"model": "smol", "prompt": "Hi", "max_tokens": 4}

    async def scenario():
        async with httpx.AsyncClient(base_url=patient.url, timeout=300) as client:
            finished: list[bool] = []

            async def long_stream() -> None:
                async with client.stream("POST", "/v1/completions", json=long_body) as response:
                    async for _ in response.aiter_lines():
                        pass
                finished.append(True)

            async def gauges() -> dict[str, float]:
                return parse_gauges((await client.get("/metrics")).text)

            async def queued_then_gone() -> str:
                try:
                    await client.post("/v1/completions", json=short_body, timeout=httpx.Timeout(300, read=0.5))
                    return "answered"
                except httpx.ReadTimeout:
                    return "hung up"

            streams = [asyncio.ensure_future(long_stream()) for _ in range(2)]
            while (await gauges())["wattlm_requests_running"] < 2:
                await asyncio.sleep(0.05)
            results = await asyncio.gather(*(queued_then_gone() for _ in range(6)))
            for _ in range(100):
                reading = await gauges()
                if reading["wattlm_queue_depth"] == 0:
                    break
                await asyncio.sleep(0.05)
            long_ones_still_running = not finished
            for stream in streams:
                stream.cancel()
            await asyncio.gather(*streams, return_exceptions=True)
            return results, reading, long_ones_still_running

    results, reading, long_ones_still_running = asyncio.run(scenario())
    assert results == ["hung up"] * 6
    assert reading["wattlm_queue_depth"] == 0, reading
    assert long_ones_still_running  # the queue emptied while both slots were still taken
    wait_until_idle(patient)


def test_a_failed_load_names_the_model_and_no_server_path(patient):
    response = patient.post("/v1/completions", {"model": "broken", "prompt": "Hi", "max_tokens": 1})
    assert 400 <= response.status_code < 500, response.text
    message = response.json()["error"]["message"]
    assert "'broken'" in message, message
    assert "private-models" not in message and str(patient.home) not in message and "/" not in message, message
    assert patient.alive()


def test_after_a_scoring_timeout_the_lock_is_free(impatient):
    started = time.monotonic()
    timed_out = impatient.post("/v1/completions", LONG_SCORING)
    print(f"480 scored tokens: {timed_out.status_code} after {time.monotonic() - started:.1f} s")
    assert timed_out.status_code == 504, timed_out.text
    # The timed-out answer would hold the scoring context for the rest of its 480 tokens; cancelled, it lets
    # go at its next token and this short one fits in its own 1.5 s.
    short = impatient.post("/v1/completions", SHORT_SCORING)
    assert short.status_code == 200, short.text
    assert impatient.alive()


def test_after_an_embeddings_timeout_the_lock_is_free(impatient):
    text = " ".join(["the power grid carries electricity"] * 60)  # ~300 tokens per input
    timed_out = impatient.post("/v1/embeddings", {"model": "smol", "input": [text] * 256})
    assert timed_out.status_code == 504, timed_out.text
    short = impatient.post("/v1/embeddings", SHORT_EMBEDDING)
    assert short.status_code == 200, short.text
    assert len(short.json()["data"][0]["embedding"]) > 0
