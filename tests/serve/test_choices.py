"""`n` choices and chat `logprobs` over the fake engine: indices, usage, seeds, streaming, errors."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from wattlm.engines.base import EngineOverloaded
from wattlm.serve import create_app

from .fakes import SCRIPT, FakeEngine
from .test_app import assert_openai_error, sse_events

CHAT = [{"role": "user", "content": "hi"}]  # renders to "<user> hi\n<assistant>": 3 prompt tokens


def test_completion_n_choices_are_indexed_seeded_and_counted(client, base):
    request = {"model": "fake-base", "prompt": "one two", "max_tokens": 3, "n": 3, "seed": 7}
    body = client.post("/v1/completions", json=request).json()
    assert [choice["index"] for choice in body["choices"]] == [0, 1, 2]
    assert all(choice["text"] == "Hello from the" for choice in body["choices"])
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 9, "total_tokens": 11}  # prompt counted once
    assert sorted(params.seed for params in base.params) == [7, 8, 9]
    assert base.closed == 3


def test_unseeded_choices_stay_unseeded(client, base):
    client.post("/v1/completions", json={"model": "fake-base", "prompt": "x", "max_tokens": 1, "n": 2})
    assert [params.seed for params in base.params] == [None, None]


def test_n_choices_of_several_prompts_are_indexed_prompt_major(client, base):
    request = {"model": "fake-base", "prompt": ["a", "b c"], "max_tokens": 1, "n": 2}
    body = client.post("/v1/completions", json=request).json()
    assert [choice["index"] for choice in body["choices"]] == [0, 1, 2, 3]
    assert base.prompts == ["a", "a", "b c", "b c"]
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


def test_streamed_completion_choices_each_end_once(client):
    request = {"model": "fake-base", "prompt": ["a", "b"], "max_tokens": 2, "n": 2, "stream": True,
               "stream_options": {"include_usage": True}}
    events = sse_events(client.post("/v1/completions", json=request))
    *text_events, usage_event = events
    assert len({event["id"] for event in events}) == 1
    for index in range(4):
        mine = [event["choices"][0] for event in text_events if event["choices"][0]["index"] == index]
        assert "".join(choice["text"] for choice in mine) == "Hello from"
        assert [choice["finish_reason"] for choice in mine][-1] == "length"
        assert sum(choice["finish_reason"] is not None for choice in mine) == 1
    assert usage_event["choices"] == []
    assert usage_event["usage"] == {"prompt_tokens": 2, "completion_tokens": 8, "total_tokens": 10}


def test_chat_n_choices(client, fake):
    request = {"model": "fake-chat", "messages": CHAT, "max_tokens": 2, "n": 2, "seed": 0}
    body = client.post("/v1/chat/completions", json=request).json()
    assert [choice["index"] for choice in body["choices"]] == [0, 1]
    assert all(choice["message"] == {"role": "assistant", "content": "Hello from"} for choice in body["choices"])
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert sorted(params.seed for params in fake.params) == [0, 1]


def test_streamed_chat_choices_start_with_their_role(client):
    request = {"model": "fake-chat", "messages": CHAT, "n": 3, "stream": True,
               "stream_options": {"include_usage": True}}
    events = sse_events(client.post("/v1/chat/completions", json=request))
    firsts = [event["choices"][0] for event in events[:3]]
    assert [(choice["index"], choice["delta"]) for choice in firsts] == [
        (index, {"role": "assistant", "content": ""}) for index in range(3)]
    for index in range(3):
        mine = [event["choices"][0] for event in events[3:-1] if event["choices"][0]["index"] == index]
        assert "".join(choice["delta"].get("content", "") for choice in mine) == "".join(SCRIPT)
        assert mine[-1]["finish_reason"] == "stop" and "role" not in mine[-1]["delta"]
    assert events[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 3 * len(SCRIPT),
                                   "total_tokens": 3 + 3 * len(SCRIPT)}


class FullAfter(FakeEngine):
    """Refuses every generation after the first `room`, as a full batch queue does."""

    def __init__(self, room: int) -> None:
        super().__init__(name="full")
        self.room = room
        self.started = 0

    def generate(self, prompt, params):
        self.started += 1
        if self.started > self.room:
            raise EngineOverloaded("server busy", retry_after=2)
        yield from super().generate(prompt, params)


@pytest.mark.parametrize("stream", [False, True])
def test_choices_are_all_or_nothing_under_overload(stream):
    engine = FullAfter(room=2)
    with TestClient(create_app({"full": engine})) as client:
        request = {"model": "full", "prompt": "x", "n": 4, "stream": stream}
        response = client.post("/v1/completions", json=request)
    assert_openai_error(response, 503, "busy")
    assert response.headers["Retry-After"] == "2"
    assert engine.closed == 2  # the two admitted choices were aborted, not left running


# ---- chat logprobs -----------------------------------------------------------------------------


def test_chat_logprobs_in_the_openai_chat_shape(client):
    request = {"model": "fake-chat", "messages": CHAT, "max_tokens": 2, "logprobs": True, "top_logprobs": 1}
    body = client.post("/v1/chat/completions", json=request).json()
    (choice,) = body["choices"]
    assert choice["message"]["content"] == "Hello from"
    assert choice["logprobs"] == {"refusal": None, "content": [
        {"token": "Hello", "logprob": -0.5, "bytes": list(b"Hello"),
         "top_logprobs": [{"token": "Hello", "logprob": -0.5, "bytes": list(b"Hello")}]},
        {"token": " from", "logprob": -0.5, "bytes": list(b" from"),
         "top_logprobs": [{"token": " from", "logprob": -0.5, "bytes": list(b" from")}]},
    ]}
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_chat_logprobs_without_top_have_empty_alternatives_and_n_works(client):
    request = {"model": "fake-chat", "messages": CHAT, "max_tokens": 1, "logprobs": True, "n": 2}
    body = client.post("/v1/chat/completions", json=request).json()
    assert [choice["index"] for choice in body["choices"]] == [0, 1]
    assert body["choices"][1]["logprobs"]["content"][0]["top_logprobs"] == []
    assert body["usage"]["completion_tokens"] == 2


def test_streamed_chat_logprobs(client):
    request = {"model": "fake-chat", "messages": CHAT, "max_tokens": 2, "logprobs": True, "top_logprobs": 0,
               "stream": True, "stream_options": {"include_usage": True}}
    events = sse_events(client.post("/v1/chat/completions", json=request))
    role, content, finish, usage = events
    assert len({event["id"] for event in events}) == 1
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert content["choices"][0]["delta"] == {"content": "Hello from"}
    assert [entry["token"] for entry in content["choices"][0]["logprobs"]["content"]] == ["Hello", " from"]
    assert finish["choices"][0]["finish_reason"] == "length"
    assert usage["usage"]["completion_tokens"] == 2


@pytest.mark.parametrize(("extra", "param"), [({"top_logprobs": 2}, None), ({"logprobs": True, "top_logprobs": 21},
                                                                             "top_logprobs")])
def test_chat_logprobs_errors(client, extra, param):
    request = {"model": "fake-chat", "messages": CHAT, **extra}
    error = assert_openai_error(client.post("/v1/chat/completions", json=request), 400)
    if param:
        assert error["param"] == param


def test_official_client_reads_n_choices_and_chat_logprobs():
    openai = pytest.importorskip("openai")
    from wattlm.serve import running_server

    with running_server(create_app({"fake": FakeEngine(name="fake")})) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
        answer = client.chat.completions.create(model="fake", messages=CHAT, n=2, max_tokens=2, logprobs=True,
                                                top_logprobs=1)
        assert [choice.index for choice in answer.choices] == [0, 1]
        assert answer.choices[0].logprobs.content[0].token == "Hello"
        assert answer.choices[0].logprobs.content[0].top_logprobs[0].logprob == -0.5
        stream = client.chat.completions.create(model="fake", messages=CHAT, n=2, max_tokens=3, stream=True)
        texts = {0: "", 1: ""}
        for event in stream:
            for choice in event.choices:
                texts[choice.index] += choice.delta.content or ""
        assert texts == {0: "Hello from the", 1: "Hello from the"}
