"""Per-request sampling in numpy: greedy, truncation, penalties, seeds."""

import numpy as np

from wattlm.engines.batching.sampler import TokenSampler
from wattlm.engines.params import SamplingParams

LOGITS = np.array([1.0, 3.0, 2.0, -1.0, 0.5], dtype=np.float32)


def draws(params: SamplingParams, count: int = 50) -> list[int]:
    sampler = TokenSampler(params, prompt_tokens=[])
    return [sampler.sample(LOGITS) for _ in range(count)]


def test_temperature_zero_is_argmax_and_leaves_the_row_untouched():
    row = LOGITS.copy()
    assert TokenSampler(SamplingParams(temperature=0), [0]).sample(row) == 1
    assert np.array_equal(row, LOGITS)


def test_top_k_one_and_tiny_top_p_are_greedy():
    assert set(draws(SamplingParams(temperature=1.5, top_k=1, seed=1))) == {1}
    assert set(draws(SamplingParams(temperature=1.5, top_p=0.01, seed=1))) == {1}
    assert set(draws(SamplingParams(temperature=1.0, top_k=2, seed=1), 200)) == {1, 2}


def test_same_seed_same_draws_and_different_seeds_differ():
    params = SamplingParams(temperature=1.0, seed=7)
    assert draws(params) == draws(params)
    assert draws(params) != draws(SamplingParams(temperature=1.0, seed=8))


def test_penalties_push_generated_and_seen_tokens_down():
    frequency = TokenSampler(SamplingParams(temperature=0, frequency_penalty=2.0), prompt_tokens=[])
    frequency.accept(1)
    assert frequency.sample(LOGITS) == 2  # 3.0 - 2.0 < 2.0
    repetition = TokenSampler(SamplingParams(temperature=0, repetition_penalty=2.0), prompt_tokens=[1])
    assert repetition.sample(LOGITS) == 2  # 3.0 / 2 < 2.0
    presence = TokenSampler(SamplingParams(temperature=0, presence_penalty=0.5), prompt_tokens=[1])
    assert presence.sample(LOGITS) == 1  # presence counts generated tokens only, not the prompt
