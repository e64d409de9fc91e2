"""`--flash-attn on`: the batch engine's greedy answers still equal the simple engine's with the same kernel.

Flash attention rounds differently from the default kernels, so its answers are compared with the simple
engine's *with flash attention on*: the guarantee tests/serve/test_batching.py gives with it off, alone and
with four requests batched together (SmolLM2, 32 tokens).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.integration

pytest.importorskip("llama_cpp")

from wattlm.engines.params import SamplingParams  # noqa: E402

from .test_batching import answer  # noqa: E402

GREEDY = SamplingParams(max_tokens=32, temperature=0)
PROMPTS = ["Water boils at", "The moon orbits", "Copper is a good", "Once upon a time"]


@pytest.fixture(scope="module")
def flash_engines(smollm2_path):
    from wattlm.engines.batching.engine import LlamaCppBatchEngine
    from wattlm.engines.llamacpp import LlamaCppEngine

    batch = LlamaCppBatchEngine(smollm2_path, n_ctx=512, n_threads=2, max_seqs=4, prefill_chunk=16, flash_attn=True)
    simple = LlamaCppEngine(smollm2_path, n_ctx=512, n_threads=2, flash_attn=True)
    yield batch, simple
    batch.close()
    simple.close()


def test_flash_greedy_answers_equal_the_simple_engine_alone_and_batched(flash_engines, smollm2_engine):
    batch, simple = flash_engines
    reference = [answer(simple, prompt, GREEDY) for prompt in PROMPTS]
    assert [answer(batch, prompt, GREEDY) for prompt in PROMPTS] == reference
    with ThreadPoolExecutor(max_workers=len(PROMPTS)) as pool:  # four requests on four slots, one batch
        together = list(pool.map(lambda prompt: answer(batch, prompt, GREEDY), PROMPTS))
    assert together == reference  # same text, finish reason and exact token counts
    assert batch.running == 0 and batch.waiting == 0
    # The kernel really changed: with the default kernels (the session's simple engine) some answer differs,
    # so the equalities above compare flash answers, not the default ones twice.
    assert [answer(smollm2_engine, prompt, GREEDY) for prompt in PROMPTS] != reference
