"""Malformed and oversized requests mixed with valid traffic, against a real uvicorn on loopback.

Bad requests of every kind a careless or hostile client sends (broken JSON, wrong types, negative or
capped max_tokens, bodies above the byte cap, prompts beyond the context, unknown models, missing or
invalid messages, bad stream_options, out-of-vocabulary token ids...) are fired concurrently with valid
streaming and whole completions. Each bad one must get the 4xx its kind deserves in OpenAI's error
shape, never a 5xx; each valid one must get a 200 with a complete answer. The run is a fixed list of
requests (no time-based loop), so it stops by itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from wattlm.serve import create_app, running_server
from wattlm.serve.limits import Limits

from .fakes import SlowEngine

MAX_BYTES = 32 * 1024
MAX_TOKENS_CAP = 48
LIMITS = Limits(max_request_bytes=MAX_BYTES, max_tokens=MAX_TOKENS_CAP, request_timeout=120.0)


@dataclass
class Planned:
    """One request and what must come back."""

    label: str
    path: str
    statuses: tuple[int, ...]  # for a bad request: the acceptable 4xx codes; for a valid one: (200,)
    body: Any = None  # JSON-serialisable, sent as JSON
    raw: bytes | None = None  # sent as-is (broken JSON, bad UTF-8)
    chunked: int = 0  # > 0: send this many bytes as a chunked body without Content-Length
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"

    @property
    def valid(self) -> bool:
        return self.statuses == (200,)

    @property
    def streams(self) -> bool:
        return isinstance(self.body, dict) and self.body.get("stream") is True


def malformed(model: str, chat_model: str, context_length: int, count: int, real: bool = False) -> list[Planned]:
    """`count` bad requests, cycling through every kind of mistake (`real`: also those only a real
    tokenizer can refuse)."""
    huge = "word " * (MAX_BYTES // 5 + 100)  # above the byte cap: 413 before parsing
    too_long = "one " * (context_length + 8)  # under the byte cap but beyond the context: 400
    chat = {"model": chat_model, "messages": [{"role": "user", "content": "hi"}]}
    text = {"model": model, "prompt": "one two"}
    kinds = [
        Planned("broken json", "/v1/completions", (400,), raw=b'{"model": "x", "prompt": '),
        Planned("not json at all", "/v1/chat/completions", (400,), raw=b"hello there"),
        Planned("bad utf-8", "/v1/completions", (400,), raw=b'{"model": "\xff\xfe", "prompt": "a"}'),
        Planned("json array body", "/v1/completions", (400,), body=[text]),
        Planned("json null body", "/v1/chat/completions", (400,), body=None, raw=b"null"),
        Planned("max_tokens as text", "/v1/completions", (400,), body={**text, "max_tokens": "ten"}),
        Planned("negative max_tokens", "/v1/completions", (400,), body={**text, "max_tokens": -5}),
        Planned("negative max_tokens chat", "/v1/chat/completions", (400,), body={**chat, "max_tokens": -1}),
        Planned("max_tokens above cap", "/v1/completions", (400,), body={**text, "max_tokens": MAX_TOKENS_CAP + 1}),
        Planned("max_completion_tokens above cap", "/v1/chat/completions", (400,),
                body={**chat, "max_completion_tokens": 10**9}),
        Planned("temperature out of range", "/v1/chat/completions", (400,), body={**chat, "temperature": 9}),
        Planned("top_p zero", "/v1/completions", (400,), body={**text, "top_p": 0}),
        Planned("body above byte cap", "/v1/completions", (413,), body={**text, "prompt": huge}),
        Planned("chunked body above byte cap", "/v1/chat/completions", (413,), chunked=MAX_BYTES + 4096),
        Planned("prompt beyond context", "/v1/completions", (400,), body={**text, "prompt": too_long}),
        Planned("prompt beyond context, streaming", "/v1/completions", (400,),
                body={**text, "prompt": too_long, "stream": True}),
        Planned("unknown model", "/v1/completions", (404,), body={**text, "model": "ghost"}),
        Planned("unknown model streaming chat", "/v1/chat/completions", (404,),
                body={**chat, "model": "ghost", "stream": True}),
        Planned("missing model", "/v1/chat/completions", (400,), body={"messages": chat["messages"]}),
        Planned("missing messages", "/v1/chat/completions", (400,), body={"model": chat_model}),
        Planned("empty messages", "/v1/chat/completions", (400,), body={**chat, "messages": []}),
        Planned("messages as a string", "/v1/chat/completions", (400,), body={**chat, "messages": "hi"}),
        Planned("invalid role", "/v1/chat/completions", (400,),
                body={**chat, "messages": [{"role": "wizard", "content": "hi"}]}),
        Planned("message without role", "/v1/chat/completions", (400,), body={**chat, "messages": [{"content": "hi"}]}),
        Planned("image content part", "/v1/chat/completions", (400,),
                body={**chat, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}),
        Planned("missing prompt", "/v1/completions", (400,), body={"model": model}),
        Planned("empty prompt list", "/v1/completions", (400,), body={**text, "prompt": []}),
        Planned("prompt of mixed types", "/v1/completions", (400,), body={**text, "prompt": ["a", 3, None]}),
        Planned("token id out of vocabulary", "/v1/completions", (400,), body={**text, "prompt": [1, 2, 10**9]}),
        Planned("negative token id", "/v1/completions", (400,), body={**text, "prompt": [-4]}),
        Planned("stream_options as text", "/v1/completions", (400,),
                body={**text, "stream": True, "stream_options": "usage please"}),
        Planned("stream_options.include_usage not bool", "/v1/chat/completions", (400,),
                body={**chat, "stream": True, "stream_options": {"include_usage": "maybe"}}),
        Planned("stream not bool", "/v1/chat/completions", (400,), body={**chat, "stream": "yes please"}),
        Planned("stop of wrong type", "/v1/completions", (400,), body={**text, "stop": {"a": 1}}),
        Planned("n of 0", "/v1/chat/completions", (400,), body={**chat, "n": 0}),
        Planned("logit_bias", "/v1/completions", (400,), body={**text, "logit_bias": {"50256": -100}}),
        Planned("tokenize without prompt", "/tokenize", (400,), body={"model": model}),
        Planned("detokenize bad ids", "/detokenize", (400,), body={"model": model, "tokens": [10**9]}),
        Planned("embeddings of nothing", "/v1/embeddings", (400,), body={"model": model, "input": []}),
        Planned("wrong method", "/v1/completions", (405,), method="GET"),
    ]
    if real:
        # "" is no token at all for SmolLM2 (no BOS is added); fed to llama.cpp it failed the whole batch.
        kinds += [
            Planned("empty prompt", "/v1/completions", (400,), body={**text, "prompt": ""}),
            Planned("empty prompt, streaming", "/v1/completions", (400,), body={**text, "prompt": "", "stream": True}),
            Planned("empty token list", "/v1/completions", (400,), body={**text, "prompt": [[]]}),
        ]
    return [kinds[index % len(kinds)] for index in range(count)]


def valid(model: str, chat_model: str, count: int, max_tokens: int) -> list[Planned]:
    """`count` well-formed requests: completions and chat, whole and streamed, with and without usage."""
    planned = []
    for index in range(count):
        stream = index % 2 == 0
        usage = {"stream_options": {"include_usage": True}} if stream and index % 4 == 0 else {}
        common = {"max_tokens": max_tokens, "temperature": 0, "stream": stream, **usage}
        if index % 3 == 0:
            body = {"model": chat_model, "messages": [{"role": "user", "content": f"Say hello {index}"}], **common}
            planned.append(Planned(f"valid chat #{index}", "/v1/chat/completions", (200,), body=body))
        else:
            body = {"model": model, "prompt": f"one two three {index}", **common}
            planned.append(Planned(f"valid completion #{index}", "/v1/completions", (200,), body=body))
    return planned


async def send(client: httpx.AsyncClient, planned: Planned) -> httpx.Response:
    if planned.chunked:
        async def pieces():
            for _ in range(planned.chunked // 1024):
                yield b"x" * 1024

        return await client.post(planned.path, content=pieces(), headers={"content-type": "application/json"})
    if planned.method == "GET":
        return await client.get(planned.path)
    if planned.raw is not None:
        return await client.post(planned.path, content=planned.raw, headers={"content-type": "application/json"})
    return await client.post(planned.path, json=planned.body)


def check_answer(planned: Planned, response: httpx.Response) -> str | None:
    """None when the response is what `planned` deserves, else what is wrong."""
    if response.status_code not in planned.statuses:
        return f"{planned.label}: HTTP {response.status_code} (wanted {planned.statuses}): {response.text[:200]}"
    if not planned.valid:
        error = response.json().get("error")
        if not isinstance(error, dict) or set(error) != {"message", "type", "param", "code"} or not error["message"]:
            return f"{planned.label}: not an OpenAI error body: {response.text[:200]}"
        return None
    if not planned.streams:
        body = response.json()
        choice = body["choices"][0]
        if choice["finish_reason"] not in ("stop", "length") or body["usage"]["completion_tokens"] < 1:
            return f"{planned.label}: incomplete answer {body}"
        return None
    payloads = [block.removeprefix("data: ") for block in response.text.split("\n\n") if block]
    if not payloads or payloads[-1] != "[DONE]":
        return f"{planned.label}: stream did not end with [DONE]: {response.text[-200:]}"
    chunks = [json.loads(payload) for payload in payloads[:-1]]
    if any("error" in chunk for chunk in chunks):
        return f"{planned.label}: error event in stream: {response.text[-300:]}"
    if len({chunk["id"] for chunk in chunks}) != 1:
        return f"{planned.label}: chunk ids differ"
    finishes = [choice["finish_reason"] for chunk in chunks for choice in chunk["choices"] if choice["finish_reason"]]
    if finishes not in (["stop"], ["length"]):
        return f"{planned.label}: finish reasons {finishes}"
    wants_usage = planned.body.get("stream_options", {}).get("include_usage")
    if wants_usage and not (chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] >= 1):
        return f"{planned.label}: no usage chunk at the end"
    return None


async def fire(base_url: str, plan: list[Planned], concurrency: int) -> list[str]:
    """Send every planned request, at most `concurrency` at a time; return the problems found."""
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)

    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:

        async def one(planned: Planned) -> str | None:
            async with gate:
                try:
                    return check_answer(planned, await send(client, planned))
                except httpx.HTTPError as error:
                    return f"{planned.label}: {type(error).__name__}: {error}"

        return [problem for problem in await asyncio.gather(*(one(planned) for planned in plan)) if problem]


def mixed_plan(model: str, chat_model: str, context_length: int, n_bad: int, n_good: int, max_tokens: int,
               seed: int = 0, real: bool = False) -> list[Planned]:
    plan = malformed(model, chat_model, context_length, n_bad, real) + valid(model, chat_model, n_good, max_tokens)
    random.Random(seed).shuffle(plan)
    return plan


def wait_idle(engine, timeout: float = 30.0) -> tuple[int, int]:
    """(running, waiting) once both are 0, or their values at the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (engine.running or engine.waiting):
        time.sleep(0.05)
    return engine.running, engine.waiting


def server_errors(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records
            if record.levelno >= logging.ERROR and record.name.startswith("wattlm")]


def test_200_malformed_requests_mixed_with_valid_load_on_the_fake(caplog):
    # A few ms per token, so valid streams are still open while the bad requests arrive.
    engines = {"fake-base": SlowEngine(0.003, name="fake-base", chat=False), "fake-chat": SlowEngine(0.003, name="fake-chat")}
    n_good = 60
    plan = mixed_plan("fake-base", "fake-chat", 64, n_bad=200, n_good=n_good, max_tokens=6)
    with running_server(create_app(engines, limits=LIMITS)) as base_url:
        problems = asyncio.run(fire(base_url, plan, concurrency=24))
        assert problems == [], "\n".join(problems)
        assert httpx.get(f"{base_url}/health", timeout=10).json() == {"status": "ok"}  # still serving
    # Each valid request ran exactly one generation and it was closed again; the bad ones started none
    # (a prompt beyond the context is refused before the fake's generation begins).
    assert sum(engine.closed for engine in engines.values()) == n_good
    assert server_errors(caplog) == []  # refusals are answers, not server failures


@pytest.mark.integration
def test_malformed_requests_mixed_with_valid_load_on_smollm2(batch_engine, caplog):
    plan = mixed_plan("smol", "smol", batch_engine.context_length, n_bad=86, n_good=12, max_tokens=8,
                      real=True)
    with running_server(create_app({"smol": batch_engine}, limits=LIMITS)) as base_url:
        problems = asyncio.run(fire(base_url, plan, concurrency=12))
        assert problems == [], "\n".join(problems)
    assert wait_idle(batch_engine) == (0, 0)
    assert server_errors(caplog) == []
