"""End to end over HTTP: real GGUF models behind uvicorn, driven by the official `openai` client.

SmolLM2-135M-Instruct has a chat template; Gemma 3 270M base has none, so it only completes text.
Each model loads once per session; the server listens on a free loopback port and stops at the end.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from itertools import islice

import pytest

pytestmark = pytest.mark.integration

openai = pytest.importorskip("openai")
pytest.importorskip("llama_cpp")

from wattlm.engines import cancel  # noqa: E402
from wattlm.engines.base import Engine  # noqa: E402
from wattlm.engines.llamacpp import LlamaCppEngine  # noqa: E402
from wattlm.engines.params import ChatTurn, SamplingParams  # noqa: E402
from wattlm.serve import create_app, running_server  # noqa: E402

CHAT = "smollm2"
BASE = "gemma3-base"
QUESTION = [{"role": "user", "content": "What is 2+2?"}]  # SmolLM2 answers "... is 4." and ends its turn


@pytest.fixture(scope="session")
def gemma_engine(gemma_path):
    engine = LlamaCppEngine(gemma_path, n_ctx=1024, n_threads=2)
    yield engine
    engine.close()  # not left to `Llama.__del__` at interpreter exit


@pytest.fixture(scope="session")
def api(smollm2_engine, gemma_engine):
    cards = [{"id": CHAT, "tier": "foundation"}, {"id": BASE, "tier": "foundation"}]
    app = create_app({CHAT: smollm2_engine, BASE: gemma_engine}, model_cards=cards)
    with running_server(app, host="127.0.0.1", port=0) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0, timeout=120)
        yield client
        client.close()


def test_engines_report_their_templates(smollm2_engine, gemma_engine):
    assert smollm2_engine.has_chat_template and not gemma_engine.has_chat_template
    assert smollm2_engine.context_length == 1024
    prompt = smollm2_engine.render_chat([ChatTurn("user", "hi")])
    assert prompt.rstrip().endswith("<|im_start|>assistant")


def test_simple_engine_name_is_a_property_and_close_a_method(smollm2_path):
    """Issue 13: `name` was a plain method (so it was no string) and `close` a property (reading it closed
    the engine, calling it raised)."""
    engine = LlamaCppEngine(smollm2_path, n_ctx=128, n_threads=2, name="smol")
    assert engine.name == "smol" and isinstance(engine, Engine)
    assert engine.close() is None  # frees the contexts; before the fix: TypeError, 'NoneType' is not callable


def test_models_list(api):
    models = {model.id: model for model in api.models.list().data}
    assert set(models) == {CHAT, BASE}
    assert models[CHAT].owned_by == "wattlm"
    assert api.models.retrieve(BASE).id == BASE


def test_completion_hits_max_tokens_with_exact_usage(api, smollm2_engine):
    prompt = "The three primary colours are"
    completion = api.completions.create(model=CHAT, prompt=prompt, max_tokens=8, temperature=0)
    choice = completion.choices[0]
    assert choice.finish_reason == "length"
    assert choice.text.strip()
    assert completion.usage.completion_tokens == 8
    assert completion.usage.prompt_tokens == smollm2_engine.count_tokens(prompt)
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 8


def test_chat_stream_equals_the_whole_answer(api):
    kwargs = dict(model=CHAT, messages=QUESTION, max_tokens=24, temperature=0)
    whole = api.chat.completions.create(**kwargs)
    answer = whole.choices[0].message.content
    assert "4" in answer

    stream = api.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text_chunks = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]
    assert len(text_chunks) > 3  # delivered piece by piece, not in one block at the end
    assert "".join(chunk.choices[0].delta.content for chunk in text_chunks) == answer
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage


def test_chat_ends_on_the_end_of_turn_token(api):
    chat = api.chat.completions.create(model=CHAT, messages=QUESTION, max_tokens=200, temperature=0)
    assert chat.choices[0].finish_reason == "stop"
    assert "<|im_end|>" not in chat.choices[0].message.content
    assert 0 < chat.usage.completion_tokens < 200


@pytest.mark.parametrize("model", [CHAT, BASE])
def test_greedy_completion_matches_llama_cpp_itself(api, model, smollm2_engine, gemma_engine):
    """Our own decode loop against llama-cpp-python's create_completion: same text, same counts."""
    engine = {CHAT: smollm2_engine, BASE: gemma_engine}[model]
    prompt = "The history of electricity began"
    ours = api.completions.create(model=model, prompt=prompt, max_tokens=12, temperature=0)
    reference = engine._llm.create_completion(prompt, max_tokens=12, temperature=0)
    assert ours.choices[0].text == reference["choices"][0]["text"]
    assert ours.choices[0].finish_reason == reference["choices"][0]["finish_reason"]
    assert ours.usage.model_dump(exclude_none=True) == reference["usage"]


def test_stop_strings_cut_the_text(api):
    kwargs = dict(model=CHAT, prompt="1, 2, 3, 4, 5,", max_tokens=16, temperature=0)
    free = api.completions.create(**kwargs).choices[0].text
    assert " 7" in free  # the model counts on; the stop below therefore applies
    stopped = api.completions.create(**kwargs, stop=[" 7"]).choices[0]
    assert stopped.finish_reason == "stop"
    assert stopped.text == free[: free.index(" 7")]


def test_base_model_cannot_chat_but_completes(api):
    with pytest.raises(openai.BadRequestError) as raised:
        api.chat.completions.create(model=BASE, messages=QUESTION, max_tokens=8)
    assert "chat template" in raised.value.message and "/v1/completions" in raised.value.message
    completion = api.completions.create(model=BASE, prompt="The capital of France is", max_tokens=6, temperature=0)
    assert completion.choices[0].text.strip()
    assert completion.usage.completion_tokens == 6


def test_chinese_streams_as_whole_characters(api):
    kwargs = dict(model=BASE, prompt="电网调度的主要任务是", max_tokens=24, temperature=0)
    whole = api.completions.create(**kwargs).choices[0].text
    streamed = "".join(
        chunk.choices[0].text for chunk in api.completions.create(**kwargs, stream=True) if chunk.choices
    )
    assert streamed == whole
    assert "\ufffd" not in whole  # no character was split between two tokens' bytes
    assert any("\u4e00" <= char <= "\u9fff" for char in whole)


def test_unknown_model_and_bad_request(api):
    with pytest.raises(openai.NotFoundError):
        api.completions.create(model="gpt-4", prompt="x", max_tokens=1)
    with pytest.raises(openai.BadRequestError):
        api.completions.create(model=CHAT, prompt="x", max_tokens=1, n=17)  # at most 16 choices


def test_concurrent_requests_get_the_answers_they_would_get_alone(api):
    # One llama.cpp context serves everything; interleaved decoding would corrupt its KV cache.
    prompts = ["Water boils at", "The moon orbits", "Copper is a good"]
    alone = [api.completions.create(model=CHAT, prompt=p, max_tokens=8, temperature=0).choices[0].text for p in prompts]
    with ThreadPoolExecutor(max_workers=3) as pool:
        together = list(
            pool.map(
                lambda p: api.completions.create(model=CHAT, prompt=p, max_tokens=8, temperature=0).choices[0].text,
                prompts,
            )
        )
    assert together == alone


def test_a_client_that_leaves_mid_stream_frees_the_engine(api):
    stream = api.chat.completions.create(model=CHAT, messages=QUESTION, max_tokens=500, temperature=0.8, stream=True)
    assert len(list(islice(stream, 3))) == 3
    stream.close()  # drop the connection with most of the 500 tokens still to come
    # If the abandoned generation still held the engine, this would wait for it (or time out).
    again = api.with_options(timeout=60).completions.create(model=CHAT, prompt="Hello", max_tokens=2)
    assert again.usage.completion_tokens == 2


def test_a_request_whose_client_left_stops_waiting_for_the_lock(smollm2_engine):
    """The simple engine serves one request at a time; one queued behind it must not wait its turn
    once its client is gone (the bridge sets its cancel flag)."""
    flag, outcome = cancel.CancelFlag(), []

    def queued() -> None:
        with cancel.cancel_scope(flag):
            try:
                outcome.append(list(smollm2_engine.generate("Hello", SamplingParams(max_tokens=2))))
            except cancel.Cancelled as error:
                outcome.append(error)

    with smollm2_engine._lock:  # a long answer holds the engine
        waiter = threading.Thread(target=queued)
        waiter.start()
        flag.set()
        waiter.join(timeout=30)
        assert not waiter.is_alive(), "the abandoned request still waits for the lock"
    assert isinstance(outcome[0], cancel.Cancelled)
    assert len(list(smollm2_engine.generate("Hello", SamplingParams(max_tokens=2)))) >= 1  # the lock is free


def test_seeded_sampling_is_reproducible(smollm2_engine):
    params = SamplingParams(max_tokens=12, temperature=0.9, seed=1234)
    first = "".join(chunk.text for chunk in smollm2_engine.generate("Once upon a time", params))
    second = "".join(chunk.text for chunk in smollm2_engine.generate("Once upon a time", params))
    assert first == second
