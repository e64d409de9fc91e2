"""Per-request sampling on one row of logits, in numpy.

Each request owns its sampler (its own seeded generator and penalty counts), so a request samples the
same tokens whether it runs alone or batched with others. Penalties follow the OpenAI and vLLM
definitions: presence/frequency act on the generated tokens, the repetition penalty (CTRL-style,
divide positive logits, multiply negative ones) on prompt and generated tokens alike.
"""

from __future__ import annotations

import random

import numpy as np

from wattlm.engines.params import SamplingParams


class TokenSampler:
    """Pick the next token of one sequence from its logits row."""

    def __init__(self, params: SamplingParams, prompt_tokens: list[int], constraint=None) -> None:
        # `constraint`: a `wattlm.engines.grammar.GrammarConstraint` (response_format), or None.
        self._params = params
        self._constraint = constraint
        seed = params.seed if params.seed is not None else random.getrandbits(32)
        self._rng = np.random.default_rng(seed)
        self._counts: dict[int, int] = {}  # generated token -> times generated
        self._seen = set(prompt_tokens)  # for the repetition penalty

    def accept(self, token: int) -> None:
        """Record a generated token (penalties depend on what was generated so far)."""
        self._counts[token] = self._counts.get(token, 0) + 1
        self._seen.add(token)
        if self._constraint is not None:
            self._constraint.accept(token)

    def sample(self, logits: np.ndarray) -> int:
        """logits: (n_vocab,) float32, read-only (a view into llama.cpp's output buffer)."""
        logits = self._penalised(logits)
        token = self._pick(logits)
        if self._constraint is not None and not self._constraint.allows(token):
            token = self._pick(self._constraint.masked(logits))  # the grammar refused it: pick among allowed
        return token

    def _pick(self, logits: np.ndarray) -> int:
        params = self._params
        if params.temperature == 0:
            return int(np.argmax(logits))
        with np.errstate(over="ignore"):
            scaled = logits.astype(np.float64) / params.temperature  # (n_vocab,)
        candidates = np.arange(scaled.shape[0])  # (n_vocab,) token ids still in the running
        if 0 < params.top_k < scaled.shape[0]:
            candidates = np.argpartition(scaled, -params.top_k)[-params.top_k :]  # (top_k,)
        order = candidates[np.argsort(-scaled[candidates], kind="stable")]  # (n_cand,) best first
        if not np.isfinite(scaled[order[0]]):
            # A temperature so small (1e-310) that the best logits overflowed to inf (and tie): the
            # distribution is a point mass on the best unscaled logit, i.e. greedy.
            return int(np.argmax(logits))
        probs = np.exp(scaled[order] - scaled[order[0]])  # (n_cand,) unnormalised, stable
        probs /= probs.sum()
        if params.top_p < 1.0:
            # Keep the smallest head whose mass reaches top_p (always at least the best token).
            keep = int(np.searchsorted(np.cumsum(probs), params.top_p)) + 1
            order, probs = order[:keep], probs[:keep] / probs[:keep].sum()
        return int(order[self._rng.choice(len(order), p=probs)])

    def _penalised(self, logits: np.ndarray) -> np.ndarray:
        params = self._params
        has_counts = bool(self._counts) and (params.presence_penalty or params.frequency_penalty)
        has_repetition = params.repetition_penalty != 1.0 and bool(self._seen)
        if not (has_counts or has_repetition):
            return logits  # the common case: no copy of the (n_vocab,) row
        logits = logits.copy()
        if has_repetition:
            seen = np.fromiter(self._seen, dtype=np.int64)  # (n_seen,)
            values = logits[seen]
            with np.errstate(over="ignore", divide="ignore"):  # a penalty near 0 gives inf: a forced token
                logits[seen] = np.where(values > 0, values / params.repetition_penalty,
                                        values * params.repetition_penalty)
        if has_counts:
            tokens = np.fromiter(self._counts, dtype=np.int64)  # (n_generated_distinct,)
            counts = np.fromiter(self._counts.values(), dtype=np.float32)  # (n_generated_distinct,)
            logits[tokens] -= params.frequency_penalty * counts + params.presence_penalty
        return logits
