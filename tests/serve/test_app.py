"""The OpenAI protocol and the app over a fake engine: shapes, counts, streaming, errors."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from wattlm.errors import WattError
from wattlm.serve import create_app

from .fakes import SCRIPT, BrokenEngine, FakeEngine


def sse_events(response) -> list:
    """The JSON payloads of an SSE body, and the literal "[DONE]" terminator."""
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = [block for block in response.text.split("\n\n") if block]
    assert all(block.startswith("data: ") for block in blocks)
    payloads = [block.removeprefix("data: ") for block in blocks]
    assert payloads[-1] == "[DONE]" and payloads.count("[DONE]") == 1
    return [json.loads(payload) for payload in payloads[:-1]]


def assert_openai_error(response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    for word in words:
        assert word in error["message"]
    return error


# ---- models ------------------------------------------------------------------------------------


def test_health(client):
    assert client.get("/health").json() == {"status": "ok"}


def test_models_lists_every_engine_with_its_card(client):
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    by_id = {card["id"]: card for card in body["data"]}
    assert set(by_id) == {"fake-chat", "fake-base"}
    chat = by_id["fake-chat"]
    assert chat["object"] == "model" and chat["owned_by"] == "wattlm" and isinstance(chat["created"], int)
    assert chat["tier"] == "task" and chat["parent"] == "fake-base"


def test_retrieve_model_and_unknown_model(client):
    assert client.get("/v1/models/fake-base").json()["tier"] == "foundation"
    error = assert_openai_error(client.get("/v1/models/nope"), 404, "nope", "fake-chat")
    assert error["code"] == "model_not_found"


def test_card_timestamps_from_the_registry_become_unix_seconds():
    app = create_app({"a": FakeEngine()}, model_cards=[{"id": "a", "created": "2026-01-02T03:04:05+00:00"}])
    with TestClient(app) as test_client:
        assert test_client.get("/v1/models/a").json()["created"] == 1767323045


def test_a_card_for_an_unserved_model_is_a_wiring_error():
    with pytest.raises(WattError, match="ghost"):
        create_app({"a": FakeEngine()}, model_cards=[{"id": "ghost"}])


# ---- /v1/completions ---------------------------------------------------------------------------


def test_completion_stops_at_max_tokens_with_exact_usage(client, base):
    body = client.post(
        "/v1/completions", json={"model": "fake-base", "prompt": "one two three", "max_tokens": 3}
    ).json()
    assert body["object"] == "text_completion" and body["id"].startswith("cmpl-")
    assert body["model"] == "fake-base"
    (choice,) = body["choices"]
    assert choice == {"index": 0, "text": "Hello from the", "logprobs": None, "finish_reason": "length"}
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
    assert base.prompts == ["one two three"]


def test_completion_that_ends_naturally_says_stop(client):
    body = client.post("/v1/completions", json={"model": "fake-base", "prompt": "hi", "max_tokens": 50}).json()
    assert body["choices"][0]["text"] == "".join(SCRIPT)
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == len(SCRIPT)


def test_completion_stop_string_is_cut_and_not_returned(client):
    request = {"model": "fake-base", "prompt": "hi", "max_tokens": 50, "stop": [" fa", "zzz"]}
    body = client.post("/v1/completions", json=request).json()
    assert body["choices"][0]["text"] == "Hello from the"
    assert body["choices"][0]["finish_reason"] == "stop"
    streamed = sse_events(client.post("/v1/completions", json={**request, "stream": True}))
    assert "".join(event["choices"][0]["text"] for event in streamed) == "Hello from the"


def test_completion_list_of_prompts_gives_one_choice_each(client):
    request = {"model": "fake-base", "prompt": ["a b", "c d e"], "max_tokens": 2}
    body = client.post("/v1/completions", json=request).json()
    assert [choice["index"] for choice in body["choices"]] == [0, 1]
    assert body["usage"] == {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}


def test_completion_stream_matches_the_whole_answer(client):
    request = {"model": "fake-base", "prompt": "one two", "max_tokens": 4}
    whole = client.post("/v1/completions", json=request).json()
    events = sse_events(
        client.post("/v1/completions", json={**request, "stream": True, "stream_options": {"include_usage": True}})
    )
    assert len({event["id"] for event in events}) == 1
    assert all(event["object"] == "text_completion" for event in events)
    *text_events, usage_event = events
    assert "".join(event["choices"][0]["text"] for event in text_events) == whole["choices"][0]["text"]
    assert [event["choices"][0]["finish_reason"] for event in text_events][-1] == "length"
    assert all(event["choices"][0]["finish_reason"] is None for event in text_events[:-1])
    assert usage_event["choices"] == [] and usage_event["usage"] == whole["usage"]


# ---- /v1/chat/completions ----------------------------------------------------------------------


def test_chat_renders_the_template_and_answers(client, fake):
    messages = [
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
    ]
    body = client.post(
        "/v1/chat/completions", json={"model": "fake-chat", "messages": messages, "max_tokens": 2}
    ).json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hello from"}
    assert body["choices"][0]["finish_reason"] == "length"
    # "developer" reaches templates as "system"; content parts are joined into text.
    assert fake.prompts == ["<system> be brief\n<user> hi\n<assistant>"]
    assert body["usage"] == {"prompt_tokens": 6, "completion_tokens": 2, "total_tokens": 8}


def test_max_completion_tokens_wins_over_max_tokens(client):
    request = {
        "model": "fake-chat",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 5,
        "max_completion_tokens": 1,
    }
    assert client.post("/v1/chat/completions", json=request).json()["usage"]["completion_tokens"] == 1


def test_chat_stream_shape(client):
    request = {
        "model": "fake-chat",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    events = sse_events(client.post("/v1/chat/completions", json=request))
    assert len({event["id"] for event in events}) == 1
    assert all(event["object"] == "chat.completion.chunk" for event in events)
    first, *middle, last, usage_event = events
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(set(event["choices"][0]["delta"]) == {"content"} for event in middle)
    assert "".join(event["choices"][0]["delta"]["content"] for event in middle) == "".join(SCRIPT)
    assert last["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert usage_event["choices"] == []
    assert usage_event["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": len(SCRIPT),
        "total_tokens": 3 + len(SCRIPT),
    }  # "<user> hi <assistant>"


def test_stream_without_include_usage_has_no_usage_chunk(client):
    request = {"model": "fake-chat", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    events = sse_events(client.post("/v1/chat/completions", json=request))
    assert events[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(event.get("usage") is None for event in events)


# ---- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_chat_on_a_model_without_template_is_400(client, stream):
    request = {"model": "fake-base", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    assert_openai_error(client.post("/v1/chat/completions", json=request), 400, "chat template", "/v1/completions")


@pytest.mark.parametrize("path", ["/v1/completions", "/v1/chat/completions"])
def test_unknown_model_is_404(client, path):
    request = {"model": "gpt-4", "prompt": "x", "messages": [{"role": "user", "content": "x"}]}
    error = assert_openai_error(client.post(path, json=request), 404, "gpt-4")
    assert error["param"] == "model"


@pytest.mark.parametrize(
    ("path", "body", "param", "words"),
    [
        ("/v1/completions", {"model": "fake-base", "prompt": "x", "max_tokens": "abc"}, "max_tokens", ["integer"]),
        ("/v1/completions", {"model": "fake-base", "prompt": "x", "n": 0}, "n", ["greater than or equal to 1"]),
        ("/v1/completions", {"model": "fake-base", "prompt": "x", "temperature": 7}, "temperature", []),
        ("/v1/completions", {"model": "fake-base", "prompt": "x", "max_tokens": 0}, None, ["echo"]),
        ("/v1/completions", {"model": "fake-base", "prompt": "x", "logprobs": 21}, "logprobs", []),
        ("/v1/completions", {"model": "fake-base"}, "prompt", ["required"]),
        ("/v1/completions", {"model": "fake-base", "prompt": [1, "a"]}, "prompt", []),
        ("/v1/completions", {"model": "fake-base", "prompt": "x", "stop": 5}, "stop", []),
        ("/v1/chat/completions", {"model": "fake-chat"}, "messages", ["required"]),
        ("/v1/chat/completions", {"model": "fake-chat", "messages": []}, "messages", []),
        (
            "/v1/chat/completions",
            {"model": "fake-chat", "messages": [{"role": "user", "content": "x"}], "n": 17},
            "n",
            ["less than or equal to 16"],
        ),
        (
            "/v1/chat/completions",
            {"model": "fake-chat", "messages": [{"role": "wizard", "content": "x"}]},
            "messages.0.role",
            [],
        ),
        (
            "/v1/chat/completions",
            {"model": "fake-chat", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            None,
            ["image_url"],
        ),
        (
            "/v1/chat/completions",
            {"model": "fake-chat", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]},
            None,
            ["tool calling"],
        ),
    ],
)
def test_bad_body_is_400_in_openai_shape(client, path, body, param, words):
    error = assert_openai_error(client.post(path, json=body), 400, *words)
    assert error["type"] == "invalid_request_error"
    if param:
        assert error["param"] == param


def test_malformed_json_is_400(client):
    response = client.post("/v1/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert_openai_error(response, 400)


def test_unknown_fields_are_ignored(client):
    request = {"model": "fake-base", "prompt": "x", "max_tokens": 1, "user": "u1", "future_knob": {"a": 1}}
    assert client.post("/v1/completions", json=request).status_code == 200


@pytest.mark.parametrize("stream", [False, True])
def test_prompt_longer_than_the_context_is_400_even_when_streaming(stream):
    app = create_app({"tiny": FakeEngine(context_length=3)})
    with TestClient(app) as tiny_client:
        request = {"model": "tiny", "prompt": "one two three four", "stream": stream}
        assert_openai_error(tiny_client.post("/v1/completions", json=request), 400, "context window")


def test_engine_crash_before_output_is_500_in_openai_shape():
    app = create_app({"broken": BrokenEngine(good_chunks=0)})
    with TestClient(app, raise_server_exceptions=False) as broken_client:
        response = broken_client.post("/v1/completions", json={"model": "broken", "prompt": "x"})
    error = assert_openai_error(response, 500)
    assert error["type"] == "server_error"


def test_engine_crash_mid_stream_sends_an_error_event_then_done():
    engine = BrokenEngine(good_chunks=2)
    with TestClient(create_app({"broken": engine})) as broken_client:
        request = {"model": "broken", "prompt": "x", "stream": True}
        events = sse_events(broken_client.post("/v1/completions", json=request))
    assert [event["choices"][0]["text"] for event in events[:-1]] == SCRIPT[:2]
    assert events[-1]["error"]["type"] == "server_error"


# ---- tokenizer endpoints -----------------------------------------------------------------------


def test_tokenize_and_detokenize_round_trip(client):
    body = client.post("/tokenize", json={"model": "fake-base", "prompt": "one two x"}).json()
    assert body == {"tokens": [0, 2, 3, 6], "count": 4, "max_model_len": 64}
    plain = client.post("/tokenize", json={"model": "fake-base", "prompt": "one two", "add_special_tokens": False})
    assert plain.json()["tokens"] == [2, 3]
    assert client.post("/detokenize", json={"model": "fake-base", "tokens": [2, 3]}).json() == {"prompt": "one two"}


def test_tokenizer_info_by_get_and_post(client):
    info = client.get("/tokenizer_info", params={"model": "fake-chat"}).json()
    assert info["bos_token"] == "<s>" and info["bos_token_id"] == 0
    assert info["eos_token"] == "</s>" and info["eos_token_id"] == 1
    assert info["vocab_size"] == 8 and info["max_model_len"] == 64 and info["has_chat_template"] is True
    assert client.post("/tokenizer_info", json={"model": "fake-chat"}).json() == info
    assert client.get("/tokenizer_info", params={"model": "fake-base"}).json()["has_chat_template"] is False


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("post", "/tokenize", {"model": "nope", "prompt": "x"}, 404, ["nope"]),
        ("post", "/detokenize", {"model": "nope", "tokens": [1]}, 404, ["nope"]),
        ("post", "/detokenize", {"model": "fake-base", "tokens": [1, 99]}, 400, ["99", "out of range"]),
        ("post", "/detokenize", {"model": "fake-base", "tokens": [-1]}, 400, ["-1"]),
        ("post", "/detokenize", {"model": "fake-base", "tokens": "abc"}, 400, []),
        ("post", "/tokenize", {"model": "fake-base"}, 400, ["prompt"]),
        ("get", "/tokenizer_info?model=nope", None, 404, ["nope"]),
        ("get", "/tokenizer_info", None, 400, ["model"]),
    ],
)
def test_tokenizer_endpoint_errors_in_openai_shape(client, method, path, body, status, words):
    response = client.request(method.upper(), path, json=body)
    assert_openai_error(response, status, *words)


# ---- echo and logprobs on /v1/completions ------------------------------------------------------


def test_echo_with_zero_max_tokens_returns_the_prompt_and_its_logprobs(client):
    request = {"model": "fake-base", "prompt": "one two three", "max_tokens": 0, "echo": True, "logprobs": 1}
    body = client.post("/v1/completions", json=request).json()
    (choice,) = body["choices"]
    assert choice["text"] == "one two three"
    assert choice["logprobs"]["tokens"] == ["one", "two", "three"]
    assert choice["logprobs"]["token_logprobs"] == [None, -1.0, -1.0]
    assert choice["logprobs"]["top_logprobs"][0] is None
    assert choice["logprobs"]["text_offset"] == [0, 3, 6]
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3}


def test_echo_without_logprobs_prefixes_the_prompt(client):
    request = {"model": "fake-base", "prompt": "one two", "max_tokens": 2, "echo": True}
    (choice,) = client.post("/v1/completions", json=request).json()["choices"]
    assert choice["text"] == "one twoHello from" and choice["logprobs"] is None


def test_token_id_prompts_and_logprobs_of_generated_tokens(client):
    request = {"model": "fake-base", "prompt": [[2, 3], [4]], "max_tokens": 1, "logprobs": 0}
    body = client.post("/v1/completions", json=request).json()
    assert [choice["text"] for choice in body["choices"]] == ["Hello", "Hello"]
    assert body["choices"][1]["logprobs"]["token_logprobs"] == [-0.5]
    assert body["usage"]["prompt_tokens"] == 3


def test_logprobs_stream_sends_each_choice_whole(client):
    request = {"model": "fake-base", "prompt": "one", "max_tokens": 2, "echo": True, "logprobs": 0,
               "stream": True, "stream_options": {"include_usage": True}}
    events = sse_events(client.post("/v1/completions", json=request))
    assert events[0]["choices"][0]["text"] == "oneHello from"
    assert len({event["id"] for event in events}) == 1
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == 2


# ---- /v1/embeddings ----------------------------------------------------------------------------


def test_embeddings_in_openai_shape_as_floats_and_base64(client):
    import base64

    import numpy as np

    body = client.post("/v1/embeddings", json={"model": "fake-base", "input": ["one two", "three"]}).json()
    assert body["object"] == "list" and body["model"] == "fake-base"
    assert [item["index"] for item in body["data"]] == [0, 1] and body["data"][0]["object"] == "embedding"
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    request = {"model": "fake-base", "input": "one two", "encoding_format": "base64"}
    encoded = client.post("/v1/embeddings", json=request).json()["data"][0]["embedding"]
    decoded = np.frombuffer(base64.b64decode(encoded), dtype="<f4")
    np.testing.assert_allclose(decoded, body["data"][0]["embedding"], rtol=1e-6)


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"model": "nope", "input": "x"}, 404, ["nope"]),
        ({"model": "fake-base", "input": []}, 400, ["empty"]),
        ({"model": "fake-base", "input": [1, 2]}, 400, ["token ids"]),
        ({"model": "fake-base", "input": "x", "dimensions": 4}, 400, ["dimensions"]),
    ],
)
def test_embedding_errors(client, body, status, words):
    assert_openai_error(client.post("/v1/embeddings", json=body), status, *words)


def test_tokenizer_endpoints_default_to_the_only_served_model():
    """lm-eval's remote tokenizer names no model; with one model served, that one answers."""
    with TestClient(create_app({"solo": FakeEngine()})) as solo:
        assert solo.post("/tokenize", json={"prompt": "one two"}).json()["tokens"]
        assert solo.get("/tokenizer_info").json()["model"] == "solo"
        assert solo.post("/detokenize", json={"tokens": [2, 3]}).json() == {"prompt": "one two"}
