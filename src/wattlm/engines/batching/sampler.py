"""Per-request sampling: llama.cpp's native sampler chain, or an exact vectorised draw; no Python loop
over the vocabulary and no sort of it.

Each request owns its sampler (its seeded RNG, its penalty counts, its grammar), so a request samples the
same tokens whether it runs alone or batched with others, given the same logits.

- Greedy (temperature 0, or below `GREEDY_BELOW`) is `argmax` on the row: one C pass, nothing built.
- Plain temperature sampling (top_p 1, no top_k: OpenAI's defaults) is `_TemperatureDraw`: one
  vectorised exp and a two-level inverse CDF, ~0.2 ms on Gemma's 262,144-entry row, where llama.cpp's
  `dist` sampler takes ~1.9 ms (numpy's argsort in the old sampler took ~60 ms).
- With top_k or top_p, llama.cpp's chain `temp -> top_k -> top_p -> dist(seed)` (`llama_sampler_*`);
  temperature first, as OpenAI and vLLM define top_p on the tempered distribution. The batch engine
  calls `sample_at(ctx, index, row)` and llama.cpp reads the output row of the last decode itself
  (`llama_sampler_sample`); other callers (the scoring context, the transformers engine) hand
  `sample(row)` a numpy row and the chain runs on a candidate array built from it, so both paths pick the
  same token for the same logits and seed.
- Penalties keep their OpenAI/vLLM meaning (llama.cpp's penalty sampler would count the prompt in
  presence/frequency): presence/frequency act on generated tokens, the repetition penalty (CTRL-style,
  divide positive logits, multiply negative ones) on prompt and generated tokens. They are written into
  the row in place at the penalised ids only (in the batch engine the row is llama.cpp's output buffer,
  rewritten by the next decode), so their cost grows with the tokens seen, not with the vocabulary.
- A grammar (`response_format`) checks the sampled token only; when it refuses it, the row is masked
  through the grammar and the token is drawn again among the allowed ones (llama-server does the same).
"""

from __future__ import annotations

import ctypes
import random

import numpy as np

from wattlm.engines.params import SamplingParams

# Below this temperature the distribution is a point mass at float32 precision, and dividing logits by
# it in float32 overflows to inf (several infs make the softmax NaN): such requests are greedy.
GREEDY_BELOW = 1e-20
_RANDOM_SEED = 0xFFFFFFFF  # llama.cpp's LLAMA_DEFAULT_SEED: `dist` would draw a fresh random seed
# Matches llama.cpp's `llama_token_data` {int32 id; float logit; float p;} (12 bytes, no padding).
TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])


def chain_seed(seed: int | None) -> int:
    """The 32-bit seed of the chain's `dist` sampler; llama.cpp reads 0xFFFFFFFF as "random", so that
    one seed is folded onto 0xFFFFFFFE (the two draw the same tokens)."""
    value = (seed if seed is not None else random.getrandbits(32)) % 2**32
    return value - 1 if value == _RANDOM_SEED else value


class TokenSampler:
    """Pick the next token of one sequence; `accept` it before sampling the next."""

    def __init__(self, params: SamplingParams, prompt_tokens: list[int], constraint=None) -> None:
        # `constraint`: a `wattlm.engines.grammar.GrammarConstraint` (response_format), or None.
        self._params = params
        self._constraint = constraint
        self.greedy = params.temperature < GREEDY_BELOW
        self.seed = chain_seed(params.seed)
        self._chain: _Chain | _TemperatureDraw | None = None  # built on the first token, when n_vocab is known
        self._counts: dict[int, int] = {}  # generated token -> times generated
        self._seen = set(prompt_tokens)  # for the repetition penalty
        self._penalised = bool(params.presence_penalty or params.frequency_penalty) or params.repetition_penalty != 1.0

    def accept(self, token: int) -> None:
        """Record a generated token (penalties depend on what was generated so far)."""
        self._counts[token] = self._counts.get(token, 0) + 1
        self._seen.add(token)
        if self._constraint is not None:
            self._constraint.accept(token)

    def sample_at(self, ctx, index: int, row: np.ndarray) -> int:
        """The token for output `index` of the last `llama_decode` on `ctx`; `row` is that output's
        (n_vocab,) logits as a writable view of llama.cpp's buffer (penalties are written into it)."""
        forced = self._penalise(row)
        if forced is not None:
            token = forced
        elif self.greedy:
            token = int(np.argmax(row))
        else:
            chain = self._chain_for(row)
            token = chain.pick_row(row) if isinstance(chain, _TemperatureDraw) else chain.sample_output(ctx, index)
        return self._grammar_checked(token, row)

    def sample(self, logits: np.ndarray) -> int:
        """logits: (n_vocab,) float32, left untouched (a penalised request works on a copy)."""
        row = logits.copy() if self._penalised else logits
        forced = self._penalise(row)
        if forced is not None:
            token = forced
        elif self.greedy:
            token = int(np.argmax(row))
        else:
            token = self._pick(row)
        return self._grammar_checked(token, row)

    def _pick(self, row: np.ndarray) -> int:
        chain = self._chain_for(row)
        return chain.pick_row(row) if isinstance(chain, _TemperatureDraw) else chain.pick(_candidates(row))

    def _chain_for(self, row: np.ndarray) -> _Chain | _TemperatureDraw:
        if self._chain is None:
            params, n_vocab = self._params, row.shape[0]
            truncated = 0 < params.top_k < n_vocab or params.top_p < 1.0
            self._chain = _Chain(params, self.seed, n_vocab) if truncated else _TemperatureDraw(params, self.seed)
        return self._chain

    def _grammar_checked(self, token: int, row: np.ndarray) -> int:
        if self._constraint is None or self._constraint.allows(token):
            return token
        # The grammar refused the pick: mask the whole row through it (rare) and pick among the allowed.
        masked = self._constraint.masked(row)  # (n_vocab,) float32, forbidden tokens at -inf
        if self.greedy:
            return int(np.argmax(masked))
        return self._pick(masked)

    def _penalise(self, row: np.ndarray) -> int | None:
        """Apply the penalties to `row` in place at the ids they touch; a token forced to +inf (a
        repetition penalty near 0) is returned, as the limit of the distribution, else None."""
        params = self._params
        if not self._penalised:
            return None
        touched = []
        if params.repetition_penalty != 1.0 and self._seen:
            seen = np.fromiter(self._seen, dtype=np.int64)  # (n_seen,)
            values = row[seen]
            with np.errstate(over="ignore", divide="ignore"):  # a penalty near 0 gives inf: a forced token
                row[seen] = np.where(values > 0, values / params.repetition_penalty, values * params.repetition_penalty)
            touched.append(seen)
        if self._counts and (params.presence_penalty or params.frequency_penalty):
            tokens = np.fromiter(self._counts, dtype=np.int64)  # (n_generated_distinct,)
            counts = np.fromiter(self._counts.values(), dtype=np.float32)  # (n_generated_distinct,)
            row[tokens] -= params.frequency_penalty * counts + params.presence_penalty
            touched.append(tokens)
        if not touched:
            return None
        ids = np.concatenate(touched)
        infinite = ids[np.isposinf(row[ids])]
        return int(infinite.min()) if infinite.size else None


def _candidates(row: np.ndarray) -> np.ndarray:
    """A `llama_token_data` array over a numpy row (the path for rows that are not llama.cpp outputs)."""
    candidates = np.empty(row.shape[0], dtype=TOKEN_DATA)  # (n_vocab,)
    candidates["id"] = np.arange(row.shape[0], dtype=np.int32)
    candidates["logit"] = row
    candidates["p"] = 0.0
    return candidates


class _TemperatureDraw:
    """Exact draws from softmax(row / temperature), the OpenAI default (top_p 1, no top_k), in ~0.2 ms.

    llama.cpp's `dist` sampler walks the row with scalar `expf` and fills a 12-byte candidate per token
    first: 1.9 ms per token on Gemma's 262,144-entry row (best of 30 on this CPU), a fifth of a decode
    step. Here the weights are one vectorised `exp` (float32, max-shifted), and the inverse CDF is found
    in two levels: cumulative sums of 512-token blocks (float64), then the cumulative sum of one block.
    Sorting is never needed (the draw is exact for any order). Seeded per request like the chain.
    """

    BLOCK = 512

    def __init__(self, params: SamplingParams, seed: int) -> None:
        self._scale = np.float32(1.0 / params.temperature)
        self._rng = np.random.default_rng(seed)

    def pick_row(self, row: np.ndarray) -> int:
        weights = row * self._scale  # (n_vocab,) float32, a new array: the row stays as it is
        np.subtract(weights, weights.max(), out=weights)
        np.exp(weights, out=weights)  # (n_vocab,) in [0, 1], the best token at 1
        starts = np.arange(0, len(weights), self.BLOCK)  # (n_blocks,)
        block_mass = np.cumsum(np.add.reduceat(weights, starts, dtype=np.float64))  # (n_blocks,)
        target = self._rng.random() * block_mass[-1]
        block = min(int(np.searchsorted(block_mass, target, side="right")), len(starts) - 1)
        inside = np.cumsum(weights[starts[block] : starts[block] + self.BLOCK], dtype=np.float64)  # (<= BLOCK,)
        if block:
            inside += block_mass[block - 1]
        return int(starts[block]) + min(int(np.searchsorted(inside, target, side="right")), len(inside) - 1)


class _Chain:
    """llama.cpp's `temp -> top_k -> top_p -> dist(seed)` for one request.

    Temperature first, as OpenAI and vLLM define top_p: on the tempered distribution (llama.cpp's
    default order applies top_k/top_p before temperature).
    """

    def __init__(self, params: SamplingParams, seed: int, n_vocab: int) -> None:
        import llama_cpp

        self._llama = llama_cpp
        chain_params = llama_cpp.llama_sampler_chain_default_params()
        chain_params.no_perf = True
        handle = llama_cpp.llama_sampler_chain_init(chain_params)
        # The chain owns the samplers added to it and frees them with itself.
        llama_cpp.llama_sampler_chain_add(handle, llama_cpp.llama_sampler_init_temp(params.temperature))
        if 0 < params.top_k < n_vocab:  # a top_k of the whole vocabulary is no truncation (and no sort)
            llama_cpp.llama_sampler_chain_add(handle, llama_cpp.llama_sampler_init_top_k(params.top_k))
        if params.top_p < 1.0:
            llama_cpp.llama_sampler_chain_add(handle, llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
        llama_cpp.llama_sampler_chain_add(handle, llama_cpp.llama_sampler_init_dist(seed))
        self._handle = handle

    def sample_output(self, ctx, index: int) -> int:
        return int(self._llama.llama_sampler_sample(self._handle, ctx, index))  # samples and accepts

    def pick(self, candidates: np.ndarray) -> int:
        llama_cpp = self._llama
        array = llama_cpp.llama_token_data_array(
            data=candidates.ctypes.data_as(llama_cpp.llama_token_data_p), size=len(candidates), selected=-1,
            sorted=False,
        )
        llama_cpp.llama_sampler_apply(self._handle, ctypes.byref(array))
        # top_k/top_p reorder and shrink the array in place; `selected` indexes what is left.
        token = int(candidates["id"][array.selected])
        llama_cpp.llama_sampler_accept(self._handle, token)
        return token

    def __del__(self) -> None:
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            self._llama.llama_sampler_free(handle)
