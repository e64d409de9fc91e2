"""The transformers backend on the tiny random Llama, through the HTTP app and the official client."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient

pytest.importorskip("transformers")

from wattlm.engines.hf_engine import TransformersEngine  # noqa: E402
from wattlm.engines.params import ChatTurn, SamplingParams  # noqa: E402
from wattlm.serve import create_app  # noqa: E402

PROMPTS = ["The grid", "Water boils at a temperature of", "Hello"]


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    engine = TransformersEngine(tiny_model_dir, name="tiny", n_ctx=256, max_batch=4, n_threads=2)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def client(engine):
    with TestClient(create_app({"tiny": engine})) as test_client:
        yield test_client


def complete(client, prompt: str, **extra) -> dict:
    request = {"model": "tiny", "prompt": prompt, "max_tokens": 8, "temperature": 0, "ignore_eos": True, **extra}
    response = client.post("/v1/completions", json=request)
    assert response.status_code == 200, response.text
    return response.json()


def test_batched_greedy_answers_equal_answers_alone(client, engine):
    alone = [complete(client, prompt)["choices"][0]["text"] for prompt in PROMPTS]
    steps_before = engine.counters["steps"]
    with ThreadPoolExecutor(max_workers=3) as pool:
        together = list(pool.map(lambda prompt: complete(client, prompt)["choices"][0]["text"], PROMPTS))
    assert together == alone and all(alone)
    assert engine.counters["steps"] - steps_before < 3 * 8  # at least some requests shared forward passes


def test_usage_counts_and_finish_reason(client, engine):
    body = complete(client, "The grid", max_tokens=5)
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": len(engine.tokenize("The grid")), "completion_tokens": 5,
                             "total_tokens": len(engine.tokenize("The grid")) + 5}


def test_seeded_sampling_and_n_choices(client):
    sampled = dict(temperature=1.0, top_p=0.9, seed=5, max_tokens=6)
    first, again = complete(client, "Hello", **sampled), complete(client, "Hello", **sampled)
    assert first["choices"][0]["text"] == again["choices"][0]["text"]
    both = complete(client, "Hello", n=2, **sampled)
    assert both["choices"][0]["text"] == first["choices"][0]["text"]
    assert both["choices"][1]["text"] == complete(client, "Hello", **{**sampled, "seed": 6})["choices"][0]["text"]


def test_echo_logprobs_equal_a_direct_forward_pass(client, engine, tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    body = complete(client, "The grid is", max_tokens=0, echo=True, logprobs=1)
    logprobs = body["choices"][0]["logprobs"]
    ids = engine.tokenize("The grid is")
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        rows = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), dim=-1)
    expected = [None] + [float(rows[position, ids[position + 1]]) for position in range(len(ids) - 1)]
    assert logprobs["token_logprobs"][0] is None
    np.testing.assert_allclose(logprobs["token_logprobs"][1:], expected[1:], atol=1e-4)


def test_streaming_through_the_official_client(engine):
    openai = pytest.importorskip("openai")
    from wattlm.serve import running_server

    with running_server(create_app({"tiny": engine})) as url:
        api = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        kwargs = dict(model="tiny", prompt="Power lines", max_tokens=10, temperature=0, extra_body={"ignore_eos": True})
        whole = api.completions.create(**kwargs)
        streamed = list(api.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
    assert "".join(chunk.choices[0].text for chunk in streamed if chunk.choices) == whole.choices[0].text
    assert streamed[-1].usage == whole.usage


def test_chat_stop_strings_and_refused_json_mode(client, engine):
    messages = [{"role": "user", "content": "hi"}]
    if engine.has_chat_template:
        body = client.post("/v1/chat/completions", json={"model": "tiny", "messages": messages, "max_tokens": 4,
                                                         "temperature": 0}).json()
        assert body["usage"]["prompt_tokens"] == len(engine.tokenize(engine.render_chat([ChatTurn("user", "hi")])))
    text = complete(client, "The grid", max_tokens=12)["choices"][0]["text"]
    stop = text[3:6]
    cut = complete(client, "The grid", max_tokens=12, stop=[stop])["choices"][0]
    assert cut["text"] == text[: text.index(stop)] and cut["finish_reason"] == "stop"
    refused = client.post("/v1/chat/completions", json={"model": "tiny", "messages": messages,
                                                         "response_format": {"type": "json_object"}})
    assert refused.status_code == 400 and "JsonOutput" in refused.json()["error"]["message"]


def test_a_closed_generation_frees_its_row(engine):
    running = engine.generate("Hello there", SamplingParams(max_tokens=200, temperature=0, ignore_eos=True))
    next(running)
    running.close()
    done = list(engine.generate("Hello", SamplingParams(max_tokens=3, temperature=0, ignore_eos=True)))
    assert done[-1].completion_tokens == 3
    deadline = time.monotonic() + 30  # liveness only: the worker resets its count after the batch
    while engine.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.running == 0 and engine.waiting == 0


def test_watt_serve_engine_transformers_serves_the_registry_hf_folder(tiny_model_dir, tmp_path, monkeypatch):
    from wattlm.registry import Registry
    from wattlm.serve import launch as launch_module
    from wattlm.serve import server

    registry = Registry(tmp_path / "ws")
    registry.register("model", "tiny-industry", path=tiny_model_dir, tier="industry", format="hf")
    served = {}
    monkeypatch.setattr(server, "serve", lambda app, host, port: served.setdefault("app", app))
    launch_module.launch(registry, ["tiny-industry"], engine="transformers", n_ctx=128, max_seqs=2, n_threads=2)
    with TestClient(served["app"]) as test_client:
        body = test_client.post("/v1/completions", json={"model": "tiny-industry", "prompt": "Hi", "max_tokens": 3,
                                                          "ignore_eos": True}).json()
        card = test_client.get("/v1/models/tiny-industry").json()
    assert body["usage"]["completion_tokens"] == 3 and card["tier"] == "industry"
    for engine in served["app"].state.served_models.engines().values():
        engine.close()
