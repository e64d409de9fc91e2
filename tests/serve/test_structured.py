"""On the real SmolLM2: JSON answers through a llama.cpp grammar, `n` seeded choices, chat logprobs.

Every engine path is covered: the batch engine (our numpy sampler + `GrammarConstraint`), the simple
engine (llama-cpp-python's own sampler chain with the grammar) and the logprobs path (`Scorer`).
"""

from __future__ import annotations

import json
import math

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration

pytest.importorskip("llama_cpp")
jsonschema = pytest.importorskip("jsonschema")

from wattlm.engines.params import JsonConstraint, SamplingParams  # noqa: E402
from wattlm.serve import create_app  # noqa: E402

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "age": {"type": "integer"},
        "city": {"type": "string", "enum": ["Paris", "Berlin", "Tokyo"]},
    },
    "required": ["name", "age", "city"],
    "additionalProperties": False,
}
ASK = [{"role": "user", "content": "Describe a person who lives in a big city, as JSON."}]


@pytest.fixture(scope="module")
def client(batch_engine, smollm2_engine):
    app = create_app({"batch": batch_engine, "simple": smollm2_engine})
    with TestClient(app) as test_client:
        yield test_client


def schema_format(schema: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}}


@pytest.mark.parametrize("model", ["batch", "simple"])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_json_schema_answers_parse_and_validate(client, model, temperature):
    request = {"model": model, "messages": ASK, "max_tokens": 80, "temperature": temperature, "seed": 3,
               "response_format": schema_format(PERSON)}
    body = client.post("/v1/chat/completions", json=request).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop", choice  # the grammar completed, then only EOG was allowed
    jsonschema.validate(json.loads(choice["message"]["content"]), PERSON)


def test_json_object_mode_and_streaming(client):
    request = {"model": "batch", "messages": ASK, "max_tokens": 120, "temperature": 0,
               "response_format": {"type": "json_object"}, "stream": True}
    with client.stream("POST", "/v1/chat/completions", json=request) as response:
        lines = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    events = [json.loads(line) for line in lines[:-1]]
    text = "".join(event["choices"][0]["delta"].get("content", "") for event in events)
    if events[-1]["choices"][0]["finish_reason"] == "stop":
        assert isinstance(json.loads(text), dict)
    else:  # cut by max_tokens: still a prefix of an object
        assert text.lstrip().startswith("{")


def test_unconstrained_answer_is_not_json_so_the_grammar_did_the_work(client):
    request = {"model": "batch", "messages": ASK, "max_tokens": 40, "temperature": 0}
    text = client.post("/v1/chat/completions", json=request).json()["choices"][0]["message"]["content"]
    with pytest.raises(ValueError):
        jsonschema.validate(json.loads(text), PERSON)


def test_json_with_logprobs_goes_through_the_scorer(client):
    request = {"model": "batch", "messages": ASK, "max_tokens": 80, "temperature": 0, "logprobs": True,
               "top_logprobs": 2, "response_format": schema_format(PERSON)}
    choice = client.post("/v1/chat/completions", json=request).json()["choices"][0]
    jsonschema.validate(json.loads(choice["message"]["content"]), PERSON)
    content = choice["logprobs"]["content"]
    assert "".join(bytes(entry["bytes"]).decode("utf-8", "replace") for entry in content) == choice["message"]["content"]


@pytest.mark.parametrize(("response_format", "words"), [
    ({"type": "json_schema", "json_schema": {"schema": {"type": "bogus"}}}, ["cannot be turned into a grammar"]),
    ({"type": "json_schema"}, ["json_schema.schema"]),
    ({"type": "yaml"}, ["yaml"]),
    # The converter would silently drop numeric bounds (we saw "age": 200 under "maximum": 150).
    ({"type": "json_schema", "json_schema": {"schema": {"type": "object", "properties": {
        "age": {"type": "integer", "minimum": 0, "maximum": 150}, "minimum": {"type": "string"}}}}},
     ["maximum, minimum", "cannot enforce"]),
])
def test_bad_response_formats_are_400(client, response_format, words):
    request = {"model": "batch", "messages": ASK, "max_tokens": 4, "response_format": response_format}
    response = client.post("/v1/chat/completions", json=request)
    assert response.status_code == 400, response.text
    assert all(word in response.json()["error"]["message"] for word in words)


def test_grammar_constraint_on_the_engine_directly(batch_engine):
    params = SamplingParams(max_tokens=60, temperature=0.8, seed=11, response_json=JsonConstraint(json.dumps(PERSON)))
    text = "".join(chunk.text for chunk in batch_engine.generate("My favourite food is", params))
    jsonschema.validate(json.loads(text), PERSON)


# ---- n choices and chat logprobs on the real engine ---------------------------------------------


def test_seeded_choices_equal_separate_requests_with_seed_plus_i(client):
    base = {"model": "batch", "prompt": "Once upon a time", "max_tokens": 10, "temperature": 1.0}
    together = client.post("/v1/completions", json={**base, "n": 3, "seed": 40}).json()
    alone = [client.post("/v1/completions", json={**base, "seed": 40 + i}).json()["choices"][0]["text"]
             for i in range(3)]
    assert [choice["text"] for choice in together["choices"]] == alone
    assert len(set(alone)) > 1  # different seeds, different stories
    assert together["usage"]["completion_tokens"] == 30


def test_chat_logprobs_match_the_greedy_choice(client):
    request = {"model": "batch", "messages": ASK, "max_tokens": 8, "temperature": 0, "logprobs": True,
               "top_logprobs": 3}
    body = client.post("/v1/chat/completions", json=request).json()
    plain = client.post("/v1/chat/completions", json={**request, "logprobs": False, "top_logprobs": None}).json()
    choice = body["choices"][0]
    assert choice["message"]["content"] == plain["choices"][0]["message"]["content"]
    for entry in choice["logprobs"]["content"]:
        top = entry["top_logprobs"]
        assert len(top) == 3 and [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True)
        assert math.isclose(top[0]["logprob"], entry["logprob"], abs_tol=1e-6)  # greedy: the chosen one is best
        assert entry["logprob"] <= 0
