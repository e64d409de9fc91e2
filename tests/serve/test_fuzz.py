"""A bounded fuzz of the whole HTTP API (schemathesis over our own OpenAPI schema, in-process ASGI).

Every operation FastAPI publishes is exercised with bodies, queries and path parameters that fit the
schema (positive) and that break it (negative: wrong types, missing fields, out-of-range numbers).
Whatever comes in, the server must answer without a 5xx (the official clients retry those, re-sending
a bad request twice), and every 4xx must carry OpenAI's `{"error": {message, type, param, code}}`.
Generation is seeded and capped per operation, so a run is reproducible and takes seconds on the fake.
The fake runs strip fields the fake refuses; the last test (integration) sends the same operations to
SmolLM2 in its own process with auth on and nothing stripped.
"""

from __future__ import annotations

import json

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from wattlm.engines.base import generation_budget
from wattlm.serve import create_app
from wattlm.serve.limits import Limits

from .fakes import FakeEngine

SERVED = ("fake-chat", "fake-base")
# Fields the schema allows but wattlm refuses with a 400 (n > 1, logit_bias, ...): dropping them from
# some bodies lets more generated requests through to the engine.
REFUSED_FIELDS = ("n", "logit_bias", "best_of", "suffix", "logprobs", "top_logprobs", "tools", "response_format",
                  "dimensions")
MAX_EXAMPLES = 60  # per operation and generation mode; the whole file runs in well under a minute


class ContractFake(FakeEngine):
    """The fake, refusing an empty prompt through `generation_budget` as every real engine does
    (the plain fake would score "" with echo and trip over its own bookkeeping)."""

    def _check(self, prompt) -> None:
        text = prompt if isinstance(prompt, str) else self.detokenize(prompt)
        generation_budget(self.name, self.count_tokens(text), self.context_length, None)

    def tokenize(self, text, add_special=True):
        # No BOS: the fake reads a prompt's words only, so "" is 0 tokens here too (as on models without BOS).
        return super().tokenize(text, add_special=False)

    def generate(self, prompt, params):
        self._check(prompt)
        return super().generate(prompt, params)

    def generate_with_logprobs(self, prompt, params, top_logprobs, echo):
        self._check(prompt)
        return super().generate_with_logprobs(prompt, params, top_logprobs, echo)


def _app():
    engines = {"fake-chat": ContractFake(name="fake-chat"), "fake-base": ContractFake(name="fake-base", chat=False)}
    # A small max_tokens cap and body cap so generated numbers and strings also hit those refusals.
    return create_app(engines, limits=Limits(max_request_bytes=64 * 1024, max_tokens=32, request_timeout=30.0))


# schemathesis reads the schema when pytest collects this module, so the app must exist by then;
# building it only constructs fake engines (no model, no thread, no socket).
APP = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=MAX_EXAMPLES, deterministic=True
)


@schema.hook
def flatmap_body(context, body):
    """Random model ids only ever reach the 404 path; point most bodies at a served model instead,
    so the generation, scoring and tokenizer code behind the router gets fuzzed too."""
    if not (isinstance(body, dict) and isinstance(body.get("model"), str)):
        return st.just(body)
    accepted = {key: value for key, value in body.items() if key not in REFUSED_FIELDS}
    if isinstance(accepted.get("messages"), list):  # content parts of random types are refused too
        accepted["messages"] = [_text_only(message) for message in accepted["messages"]]
    return st.tuples(st.sampled_from([*SERVED, body["model"]]), st.sampled_from([body, accepted])).map(
        lambda pair: {**pair[1], "model": pair[0]}
    )


def _text_only(message):
    if isinstance(message, dict) and isinstance(message.get("content"), list):
        return {**message, "content": " ".join(str(part.get("text") or "") for part in message["content"]
                                               if isinstance(part, dict))}
    return message


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    if isinstance(path_parameters, dict) and isinstance(path_parameters.get("model_id"), str):
        return st.sampled_from([*SERVED, path_parameters["model_id"]]).map(lambda model: {"model_id": model})
    return st.just(path_parameters)


@schema.hook
def flatmap_query(context, query):
    if isinstance(query, dict) and isinstance(query.get("model"), str):
        return st.sampled_from([*SERVED, query["model"]]).map(lambda model: {**query, "model": model})
    return st.just(query)


def assert_openai_error_shape(response) -> None:
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]


def assert_complete_stream(text: str) -> None:
    """An SSE body that ends with exactly one [DONE] and carries no error event."""
    payloads = [block.removeprefix("data: ") for block in text.split("\n\n") if block]
    assert payloads and payloads[-1] == "[DONE]" and payloads.count("[DONE]") == 1, text[-300:]
    for payload in payloads[:-1]:
        assert "error" not in json.loads(payload), payload


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@schema.parametrize()
@hypothesis.settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
def test_no_server_errors_and_openai_error_shape(case):
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500, response.text
    if 400 <= response.status_code < 500:
        assert_openai_error_shape(response)
        return
    assert response.status_code == 200, response.text
    content_type = " ".join(response.headers.get("content-type", []))  # schemathesis: name -> list of values
    if content_type.startswith("text/event-stream"):
        assert_complete_stream(response.text)
    elif case.path != "/metrics":
        response.json()  # every other answer is JSON


# ---- valid-looking bodies with one mutation ----------------------------------------------------
# Schemathesis's positive bodies rarely get past our refusals (n, logit_bias, random content-part
# types), so most never reach an engine. These bodies start from what real clients send and then
# break at most one field, which drives the generation and streaming paths much harder.

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
WORDS = st.lists(st.sampled_from(["one", "two", "three", "x", "hi", "grid", "é", "\u0000", "🙂"]), max_size=12)
COMMON = {
    "model": st.sampled_from([*SERVED, "ghost"]),
    "max_tokens": st.integers(-2, 40),
    "temperature": st.floats(0.0, 2.0),
    "top_p": st.floats(0.01, 1.0),
    "top_k": st.integers(-1, 50),
    "seed": st.integers(0, 2**31),
    "stop": st.none() | st.sampled_from(["the", " fake", "zzz"]) | st.lists(st.sampled_from(["from", "."]), max_size=3),
    "stream": st.booleans(),
    "stream_options": st.none() | st.fixed_dictionaries({"include_usage": st.booleans()}),
    "ignore_eos": st.booleans(),
    "repetition_penalty": st.floats(0.5, 2.0),
}
COMPLETION = {**COMMON, "prompt": WORDS.map(" ".join) | st.lists(st.integers(0, 7), min_size=1, max_size=8),
              "echo": st.booleans(), "logprobs": st.none() | st.integers(0, 5)}
CHAT = {**COMMON, "messages": st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "developer", "user", "assistant"]),
                           "content": WORDS.map(" ".join)}), min_size=1, max_size=4)}


def mutated_bodies(fields: dict) -> st.SearchStrategy:
    """A body with a random subset of optional fields, then possibly one field dropped or replaced."""
    required = {"model", "prompt", "messages"} & set(fields)
    optional = {name: strategy for name, strategy in fields.items() if name not in required}
    body = st.fixed_dictionaries({name: fields[name] for name in required}, optional=optional)
    mutation = st.sampled_from(["none", "drop", "replace"])
    return st.tuples(body, mutation, st.sampled_from(sorted(fields)), JSON_VALUES).map(_mutate)


def _mutate(parts):
    body, mutation, name, value = parts
    if mutation == "drop":
        body.pop(name, None)
    elif mutation == "replace":
        body[name] = value
    return body


@pytest.mark.parametrize(("path", "fields"), [("/v1/completions", COMPLETION), ("/v1/chat/completions", CHAT)])
def test_mutated_requests_never_fail_the_server(path, fields):
    from fastapi.testclient import TestClient

    statuses: dict[int, int] = {}

    with TestClient(_app()) as client:

        @hypothesis.given(body=mutated_bodies(fields))
        @hypothesis.settings(max_examples=100, deadline=None, derandomize=True, database=None,
                             suppress_health_check=list(hypothesis.HealthCheck))
        def check(body):
            assert_answered(client.post(path, json=body), body, statuses)

        check()
    # The fuzz must have reached the engine, not only the validators.
    assert statuses.get(200, 0) >= 10 and sum(count for status, count in statuses.items() if status >= 400) >= 10, statuses


def assert_answered(response, body: dict, statuses: dict[int, int]) -> None:
    """A mutated request's answer: never a 5xx; an OpenAI-shaped error, a whole stream or choices."""
    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    assert response.status_code < 500, (body, response.text)
    if response.status_code >= 400:
        assert_openai_error_shape(response)
    elif body.get("stream") is True:
        assert_complete_stream(response.text)
    else:
        assert response.json()["choices"], response.text

# ---- the same fuzz against SmolLM2, with auth on and nothing stripped -------------------------------
# The operations of our OpenAPI schema, sent over HTTP to the real batch engine in its own process
# (tests/serve/harden_server.py) with an API key: `n`, `response_format`, `logprobs`, seeds and every
# other field go through as generated. A crash of llama.cpp shows as a dead process.

REAL_EXAMPLES = 25  # per operation and mode: every request reaches the real engine on a 2-core machine
REAL_STATUSES: dict[str, dict[int, int]] = {}  # operation -> status -> count, printed with -s
REAL_SCHEMA = schemathesis.openapi.from_dict(APP.openapi())  # no app attached: cases go out over HTTP
REAL_SCHEMA.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=REAL_EXAMPLES, deterministic=True
)


@REAL_SCHEMA.hook("flatmap_body")
def real_model_body(context, body):
    """Point most bodies at the served model; nothing else is dropped or changed."""
    if not (isinstance(body, dict) and isinstance(body.get("model"), str)):
        return st.just(body)
    return st.sampled_from(["smol", "smol", body["model"]]).map(lambda model: {**body, "model": model})


@REAL_SCHEMA.hook("flatmap_path_parameters")
def real_model_path(context, path_parameters):
    if isinstance(path_parameters, dict) and isinstance(path_parameters.get("model_id"), str):
        return st.sampled_from(["smol", path_parameters["model_id"]]).map(lambda model: {"model_id": model})
    return st.just(path_parameters)


@pytest.fixture(scope="module")
def real_server(smollm2_path, tmp_path_factory):
    pytest.importorskip("llama_cpp")
    from wattlm.serve.keys import KeyStore

    from .test_harden import start_server, stop_server

    home = tmp_path_factory.mktemp("fuzz-real-home")
    key, _ = KeyStore.of_home(home).create("fuzz")
    # Short answers and a long timeout: a 504 here would be the machine's load, not a bug.
    served = start_server(smollm2_path, home, {"WATT_TEST_MAX_TOKENS": "8", "WATT_TEST_TIMEOUT": "600"})
    served.key = key
    yield served
    stop_server(served)


@pytest.mark.integration
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@REAL_SCHEMA.parametrize()
@hypothesis.settings(max_examples=REAL_EXAMPLES, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
def test_real_engine_with_auth_and_nothing_stripped_gives_no_5xx(case, real_server):
    response = case.call(base_url=real_server.url, headers={"Authorization": f"Bearer {real_server.key}"},
                         timeout=600)
    counts = REAL_STATUSES.setdefault(f"{case.method} {case.path}", {})
    counts[response.status_code] = counts.get(response.status_code, 0) + 1
    print(f"\r{case.method} {case.path}: {dict(sorted(counts.items()))}   ", end="")
    assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
    if 400 <= response.status_code < 500:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}, error
    elif " ".join(response.headers.get("content-type", [])).startswith("text/event-stream"):
        assert_complete_stream(response.text)
    assert real_server.alive(), case.as_curl_command()


# Schemathesis's bodies rarely pass validation (a random `n`, `logit_bias`, content parts), so on the real
# engine they mostly exercise the validators. These start from what clients send, with the fields the
# fake runs leave out (`n`, `logprobs`, `top_logprobs`, `response_format`, 64-bit seeds), then mutate one.
REAL_FIELDS = {
    "n": st.integers(1, 3),
    "seed": st.integers(-(2**63), 2**64 - 1),
    "response_format": st.sampled_from([
        {"type": "text"}, {"type": "json_object"},
        {"type": "json_schema", "json_schema": {"name": "x", "schema": {
            "type": "object", "properties": {"code": {"type": "string", "pattern": "^\\d{3}$"}}, "required": ["code"]}}},
    ]),
}
REAL_COMPLETION = {**COMPLETION, "n": REAL_FIELDS["n"], "seed": REAL_FIELDS["seed"],
                   "prompt": WORDS.map(" ".join).filter(bool) | st.lists(st.integers(1, 500), min_size=1, max_size=8)}
REAL_CHAT = {**CHAT, **REAL_FIELDS, "logprobs": st.booleans(), "top_logprobs": st.integers(0, 5)}


@pytest.mark.integration
@pytest.mark.parametrize(("path", "fields"), [("/v1/completions", REAL_COMPLETION), ("/v1/chat/completions", REAL_CHAT)])
def test_mutated_requests_with_auth_on_the_real_engine_give_no_5xx(path, fields, real_server):
    statuses: dict[int, int] = {}
    headers = {"Authorization": f"Bearer {real_server.key}"}

    @hypothesis.given(body=mutated_bodies(fields).map(lambda body: {**body, "model": "smol"} if body.get("model")
                                                       in SERVED else body))
    @hypothesis.settings(max_examples=60, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck))
    def check(body):
        assert_answered(real_server.client.post(path, json=body, headers=headers, timeout=600), body, statuses)

    check()
    print(f"{path}: {dict(sorted(statuses.items()))}")
    assert real_server.alive()
    assert statuses.get(200, 0) >= 10, statuses  # the engine was reached, not only the validators
