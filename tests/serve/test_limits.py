"""Request caps over a fake engine: body size (413), max_tokens (400 naming the field), request timeout."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from wattlm.serve import create_app
from wattlm.serve.limits import Limits

from .fakes import FakeEngine, SlowEngine
from .test_app import assert_openai_error, sse_events


@pytest.fixture
def capped() -> TestClient:
    app = create_app({"m": FakeEngine(chat=True)}, limits=Limits(max_request_bytes=1000, max_tokens=4))
    with TestClient(app) as client:
        yield client


def test_oversized_body_is_413_by_content_length_and_when_chunked(capped):
    body = json.dumps({"model": "m", "prompt": "x " * 600}).encode()
    response = capped.post("/v1/completions", content=body, headers={"content-type": "application/json"})
    assert assert_openai_error(response, 413, "too large", "1000")["code"] == "request_too_large"

    def chunks():
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    response = capped.post("/v1/completions", content=chunks(), headers={"content-type": "application/json"})
    assert_openai_error(response, 413, "too large")
    small = capped.post("/v1/completions", json={"model": "m", "prompt": "x", "max_tokens": 2})
    assert small.status_code == 200 and small.json()["choices"][0]["text"] == "Hello from"


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/completions", {"prompt": "x", "max_tokens": 5}, "max_tokens"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "max_tokens": 9}, "max_tokens"),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 5},
            "max_completion_tokens",
        ),
    ],
)
def test_max_tokens_above_the_cap_is_400_naming_the_field(capped, path, body, param):
    error = assert_openai_error(capped.post(path, json={"model": "m", **body}), 400, param, "at most 4")
    assert error["param"] == param


def test_requests_without_max_tokens_are_held_to_the_cap(capped):
    body = capped.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert body.json()["usage"]["completion_tokens"] == 4 and body.json()["choices"][0]["finish_reason"] == "length"
    body = capped.post("/v1/completions", json={"model": "m", "prompt": "x"})  # the default of 16 is capped too
    assert body.json()["usage"]["completion_tokens"] == 4


def test_default_cap_is_the_context_length():
    with TestClient(create_app({"m": FakeEngine(context_length=64)})) as client:
        assert_openai_error(client.post("/v1/completions", json={"model": "m", "prompt": "x", "max_tokens": 65}), 400)
        assert client.post("/v1/completions", json={"model": "m", "prompt": "x", "max_tokens": 64}).status_code == 200


def test_request_timeout_aborts_the_generation():
    engine = SlowEngine(delay=0.2)
    with TestClient(create_app({"slow": engine}, limits=Limits(request_timeout=0.5))) as client:
        started = time.monotonic()
        response = client.post("/v1/completions", json={"model": "slow", "prompt": "x", "max_tokens": 6})
        assert time.monotonic() - started < 1.0
        assert assert_openai_error(response, 504, "0.5 s")["code"] == "request_timeout"
        events = sse_events(client.post("/v1/completions", json={"model": "slow", "prompt": "x", "stream": True}))
        assert events[0]["choices"][0]["text"] == "Hello"
        assert events[-1]["error"]["code"] == "request_timeout"
        deadline = time.monotonic() + 2
        while engine.closed < 2 and time.monotonic() < deadline:  # each generation is closed, freeing the engine
            time.sleep(0.05)
        assert engine.closed == 2
