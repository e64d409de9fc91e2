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


def test_draws_follow_the_tempered_softmax():
    # Fixed seed, so the counts are deterministic; the bounds are ~5 standard deviations wide.
    probs = np.exp(LOGITS / 0.7) / np.exp(LOGITS / 0.7).sum()
    counts = np.bincount(draws(SamplingParams(temperature=0.7, seed=3), 4000), minlength=len(LOGITS))
    assert np.all(np.abs(counts / 4000 - probs) < 5 * np.sqrt(probs * (1 - probs) / 4000) + 1e-3)


def test_top_p_acts_on_the_tempered_distribution():
    # At temperature 1 token 1 alone holds 62 % of the mass; at temperature 5 the three best hold 64 %.
    assert set(draws(SamplingParams(temperature=1.0, top_p=0.6, seed=2), 200)) == {1}
    assert set(draws(SamplingParams(temperature=5.0, top_p=0.6, seed=2), 200)) == {0, 1, 2}


def test_tiny_or_zero_temperature_builds_no_chain_and_is_greedy():
    for temperature in (0.0, 1e-30, 1e-310):
        sampler = TokenSampler(SamplingParams(temperature=temperature, seed=1), [])
        assert sampler.greedy and sampler.sample(LOGITS) == 1


def test_the_seed_llama_cpp_reads_as_random_is_still_reproducible():
    params = SamplingParams(temperature=1.0, seed=2**32 - 1)
    assert TokenSampler(params, []).seed == 2**32 - 2
    assert draws(params) == draws(params) == draws(SamplingParams(temperature=1.0, seed=2**32 - 2))


def test_huge_top_k_is_no_truncation():
    assert draws(SamplingParams(temperature=1.0, top_k=10**9, seed=4)) == draws(SamplingParams(temperature=1.0, seed=4))


def test_penalties_write_only_the_penalised_ids_of_a_llama_row():
    row = LOGITS.copy()  # stands for llama.cpp's output buffer, which `sample_at` may write into
    sampler = TokenSampler(SamplingParams(temperature=0, repetition_penalty=2.0, frequency_penalty=1.0), [2])
    sampler.accept(4)
    assert sampler.sample_at(None, 0, row) == 1  # greedy reads the row, never the context
    expected = LOGITS.copy()
    expected[2] /= 2.0
    expected[4] = LOGITS[4] / 2.0 - 1.0
    assert np.array_equal(row, expected)


def test_a_token_forced_to_infinity_by_the_repetition_penalty_is_picked():
    sampler = TokenSampler(SamplingParams(temperature=1.0, repetition_penalty=1e-300, seed=5), [4, 2])
    with np.errstate(all="ignore"):
        assert sampler.sample(LOGITS) == 2  # both are +inf after the penalty: the lowest id, as argmax
    assert np.isfinite(LOGITS).all()


def test_sampling_leaves_the_callers_row_untouched():
    row = LOGITS.copy()
    sampler = TokenSampler(SamplingParams(temperature=0.9, top_k=3, top_p=0.9, presence_penalty=1.0, seed=6), [1])
    for _ in range(20):
        sampler.accept(sampler.sample(row))
    assert np.array_equal(row, LOGITS)


def test_each_request_has_its_own_random_stream():
    first = TokenSampler(SamplingParams(temperature=1.0, seed=9), [])
    second = TokenSampler(SamplingParams(temperature=1.0, seed=9), [])
    interleaved = [(first.sample(LOGITS), second.sample(LOGITS)) for _ in range(30)]
    assert [a for a, _ in interleaved] == [b for _, b in interleaved] == draws(SamplingParams(temperature=1.0, seed=9), 30)


def test_plain_temperature_draws_are_exact_across_blocks_of_a_long_row():
    # 1,300 tokens: three 512-token blocks, the last one short; the mass sits in the second and third.
    logits = np.full(1300, -30.0, dtype=np.float32)
    logits[[700, 1299, 5]] = [2.0, 1.5, 0.5]
    sampler = TokenSampler(SamplingParams(temperature=1.0, seed=11), [])
    counts = np.bincount([sampler.sample(logits) for _ in range(6000)], minlength=1300)
    probs = np.exp(logits.astype(np.float64) - 2.0) / np.exp(logits.astype(np.float64) - 2.0).sum()
    for token in (700, 1299, 5):
        assert abs(counts[token] / 6000 - probs[token]) < 5 * np.sqrt(probs[token] * (1 - probs[token]) / 6000)
    assert counts.sum() == counts[[700, 1299, 5]].sum()  # tokens at e^-32 of the best never come up
