"""The continuous-batching engine on the real SmolLM2: same answers as the simple engine, alone or batched.

Greedy text, finish reasons and token counts must equal `LlamaCppEngine`'s for the same prompt, however
many requests share the batch, however the prompt is chunked, and whether its prefix came from the cache.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.integration

pytest.importorskip("llama_cpp")

from wattlm.engines.base import EngineOverloaded  # noqa: E402
from wattlm.engines.batching.engine import LlamaCppBatchEngine  # noqa: E402
from wattlm.engines.params import SamplingParams  # noqa: E402

GREEDY = SamplingParams(max_tokens=16, temperature=0)
# Longer than the 16-token prefill chunk of the engine below, so it is read over several steps.
LONG_PROMPT = (
    "The electrical grid is a network of power stations, transmission lines and substations. "
    "Operators balance supply and demand every second, and when a line trips they must"
)
PROMPTS = ["Water boils at", "The moon orbits", "Copper is a good", LONG_PROMPT, "Once upon a time"]
SYSTEM = "You are a careful assistant for power-grid engineers. " * 8  # a shared prefix of ~90 tokens


def answer(engine, prompt: str, params: SamplingParams = GREEDY) -> tuple[str, object]:
    chunks = list(engine.generate(prompt, params))
    return "".join(chunk.text for chunk in chunks), chunks[-1]


def wait_until(condition, timeout: float = 30.0) -> bool:
    """Liveness only (the scheduler reacts between steps), never a speed assertion."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_concurrent_greedy_answers_equal_the_simple_engine(batch_engine, smollm2_engine):
    alone = [answer(smollm2_engine, prompt) for prompt in PROMPTS]
    # Five requests on four slots: one waits for a slot, the long one is prefilled in chunks.
    with ThreadPoolExecutor(max_workers=len(PROMPTS)) as pool:
        together = list(pool.map(lambda prompt: answer(batch_engine, prompt), PROMPTS))
    for (text, last), (reference_text, reference_last) in zip(together, alone, strict=True):
        assert text == reference_text
        assert last == reference_last  # same finish reason and exact token counts
    assert batch_engine.running == 0 and batch_engine.waiting == 0


def test_chunked_prefill_of_a_long_prompt(batch_engine, smollm2_engine):
    # Not LONG_PROMPT: the test above left it in a slot's prefix cache, whose KV was computed batched with
    # other requests at timing-dependent chunk boundaries; this prompt shares no prefix with any before it,
    # so it is read here, alone, in 16-token chunks.
    prompt = ("Before a breaker is racked out, the switching order lists every step: open the breaker, check "
              "the indication, lock the mechanism, and only then")
    assert batch_engine.count_tokens(prompt) > 16  # at least two chunks
    assert answer(batch_engine, prompt) == answer(smollm2_engine, prompt)


def test_max_tokens_finishes_with_length_and_exact_usage(batch_engine):
    prompt = "The three primary colours are"
    text, last = answer(batch_engine, prompt, SamplingParams(max_tokens=5, temperature=0))
    assert text and last.finish_reason == "length"
    assert last.completion_tokens == 5
    assert last.prompt_tokens == batch_engine.count_tokens(prompt)


def test_stop_strings_cut_the_text(batch_engine, smollm2_engine):
    params = SamplingParams(max_tokens=16, temperature=0, stop=(" 7",))
    free, _ = answer(batch_engine, "1, 2, 3, 4, 5,", SamplingParams(max_tokens=16, temperature=0))
    assert " 7" in free
    text, last = answer(batch_engine, "1, 2, 3, 4, 5,", params)
    assert last.finish_reason == "stop" and text == free[: free.index(" 7")]
    assert (text, last) == answer(smollm2_engine, "1, 2, 3, 4, 5,", params)


def test_chat_ends_on_end_of_turn_unless_eos_is_ignored(batch_engine, smollm2_engine):
    from wattlm.engines.params import ChatTurn

    prompt = batch_engine.render_chat([ChatTurn("user", "What is 2+2?")])
    assert prompt == smollm2_engine.render_chat([ChatTurn("user", "What is 2+2?")])
    text, last = answer(batch_engine, prompt, SamplingParams(max_tokens=100, temperature=0))
    assert last.finish_reason == "stop" and 0 < last.completion_tokens < 100 and "<|im_end|>" not in text
    _, forced = answer(batch_engine, prompt, SamplingParams(max_tokens=last.completion_tokens + 4, temperature=0,
                                                            ignore_eos=True))
    assert forced.finish_reason == "length" and forced.completion_tokens == last.completion_tokens + 4


def test_a_client_that_leaves_frees_its_slot(batch_engine):
    stream = batch_engine.generate("Tell me a long story.", SamplingParams(max_tokens=400, temperature=0.8, ignore_eos=True))
    next(stream)
    assert batch_engine.running == 1
    stream.close()  # what the HTTP bridge does when the client disconnects
    assert wait_until(lambda: batch_engine.running == 0)
    assert answer(batch_engine, "Hello", SamplingParams(max_tokens=2, temperature=0))[1].completion_tokens == 2


def test_shared_prefixes_come_from_the_cache_with_the_same_answer(batch_engine, smollm2_engine):
    first, second = SYSTEM + "Question: what is a transformer?", SYSTEM + "Question: what is a busbar?"
    reused_before = batch_engine.counters["reused_prompt_tokens"]
    holder = batch_engine.generate(first, SamplingParams(max_tokens=200, temperature=0, ignore_eos=True))
    next(holder)  # `first` now holds a slot whose cells contain the shared prefix
    assert answer(batch_engine, second) == answer(smollm2_engine, second)  # copied from the busy slot
    holder.close()
    assert answer(batch_engine, first) == answer(smollm2_engine, first)  # its own slot's cache
    assert batch_engine.counters["reused_prompt_tokens"] - reused_before >= 2 * batch_engine.count_tokens(SYSTEM) - 4


def test_seeded_sampling_is_reproducible_alone_or_batched(batch_engine):
    params = SamplingParams(max_tokens=12, temperature=0.9, top_p=0.95, top_k=50, seed=1234,
                            repetition_penalty=1.1, frequency_penalty=0.3)
    alone = answer(batch_engine, "Once upon a time", params)
    with ThreadPoolExecutor(max_workers=3) as pool:
        batched = list(pool.map(lambda _: answer(batch_engine, "Once upon a time", params), range(3)))
    assert batched == [alone] * 3


def test_overload_is_refused_beyond_slots_and_queue(smollm2_path):
    engine = LlamaCppBatchEngine(smollm2_path, n_ctx=256, n_threads=2, max_seqs=1, max_waiting=1)
    try:
        running = engine.generate("Tell me a story.", SamplingParams(max_tokens=200, temperature=0, ignore_eos=True))
        next(running)
        queued = engine.generate("Hello", SamplingParams(max_tokens=2, temperature=0))
        waiter = threading.Thread(target=lambda: list(queued))
        waiter.start()
        assert wait_until(lambda: engine.waiting == 1)
        with pytest.raises(EngineOverloaded):
            next(engine.generate("One more", SamplingParams(max_tokens=2, temperature=0)))
        running.close()  # the slot frees, the queued request runs to its end
        waiter.join(timeout=60)
        assert not waiter.is_alive() and engine.running == 0 and engine.waiting == 0
    finally:
        engine.close()


def test_openai_client_streams_from_the_batch_engine_and_metrics_count_it(batch_engine):
    openai = pytest.importorskip("openai")
    import httpx

    from wattlm.serve import create_app, running_server

    with running_server(create_app({"smollm2": batch_engine}), port=0) as base_url:
        client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0, timeout=120)
        kwargs = dict(model="smollm2", messages=[{"role": "user", "content": "What is 2+2?"}], max_tokens=12,
                      temperature=0)
        whole = client.chat.completions.create(**kwargs)
        chunks = list(client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
        assert text == whole.choices[0].message.content and chunks[-1].usage == whole.usage
        metrics = httpx.get(f"{base_url}/metrics").text
    assert 'wattlm_requests_running{model="smollm2"} 0' in metrics
    assert 'wattlm_time_to_first_token_seconds_count{model="smollm2"}' in metrics
