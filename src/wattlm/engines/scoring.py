"""Log-probabilities of prompt and generated tokens (`echo` + `logprobs` on /v1/completions).

lm-evaluation-harness scores multiple-choice tasks by sending context+continuation with `echo=true`,
`logprobs=1` and reading the prompt tokens' log-probabilities. Both engines delegate such requests
here: a second llama.cpp context over the same GGUF, created on first use and shared by the LoRA
engines of that GGUF (`scoring_context.ScoringContext`), which decodes the prompt in chunks and yields
a logits row per position only where one is read. It serves one request at a time behind a lock,
outside the batching loop (scoring is a prompt-sized prefill plus a few tokens).

Memory: at most `ROWS` (64) logits rows at a time, whatever the prompt's length (64 MiB for Gemma 3's
262k vocabulary); the figures are in docs/security.md.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from wattlm.engines import cancel
from wattlm.engines.base import generation_budget
from wattlm.engines.grammar import GrammarConstraint, json_grammar
from wattlm.engines.params import LogprobCompletion, SamplingParams
from wattlm.engines.scoring_context import ScoringContext
from wattlm.engines.textstream import ByteDecoder, stream_text
from wattlm.errors import WattError
from wattlm.shared.lm import log_softmax

if TYPE_CHECKING:
    from llama_cpp import Llama

_SOFTMAX_ROWS = 8


class Scorer:
    """Prompt and generation logprobs on a lazily created context shared per GGUF (see `ScoringContext`)."""

    def __init__(self, gguf_path: Path, n_ctx: int, n_threads: int | None, name: str, is_end_of_generation,
                 lora_path: Path | None = None, flash_attn: bool = False) -> None:
        self._n_ctx = n_ctx
        self._name = name
        self._is_eog = is_end_of_generation
        self._lora = Path(lora_path).resolve() if lora_path is not None else None
        self._context: ScoringContext | None = ScoringContext.acquire(gguf_path, n_ctx, n_threads, flash_attn)
        self._closing = threading.Lock()

    def close(self) -> None:
        with self._closing:  # once per engine, however often close is called
            context, self._context = self._context, None
        if context is not None:
            context.release()

    def complete(
        self, prompt_text: str, prompt_tokens: list[int], params: SamplingParams, top_n: int, echo: bool
    ) -> LogprobCompletion:
        from wattlm.engines.batching.sampler import TokenSampler  # numpy only; shared with the batch engine

        if not prompt_tokens:
            raise WattError("the prompt is empty; send at least one token")
        budget = generation_budget(self._name, len(prompt_tokens), self._n_ctx, params.max_tokens)
        if params.max_tokens == 0:
            budget = 0
        # The grammar's text is built before the lock (the converter is the slow part); only llama.cpp's
        # parse of it (at most MAX_GRAMMAR_BYTES) runs under it, because it needs the context's vocabulary.
        gbnf = json_grammar(params.response_json) if params.response_json is not None else None
        # The lock is given up, and the work stopped at the next token, once the request is gone
        # (a 504 or a client that left): otherwise a zombie answer would hold the context for its whole length.
        context = self._context
        if context is None:
            raise WattError(f"engine '{self._name}' is closed")
        with cancel.holding(context.lock):
            llm = context.start(self._lora)
            entries: list[tuple[int, float | None, dict[str, float] | None]] = []  # (token, logprob, top)
            if echo:
                entries.append((prompt_tokens[0], None, None))
            position = 0  # of the chunk's first token in the prompt
            last = None  # logits after the prompt's last token: the first generated token's
            for logits in context.decode(prompt_tokens, want_rows=echo):
                cancel.check()  # between chunks of a long prompt too
                if echo:
                    scored = logits[: max(0, len(prompt_tokens) - 1 - position)]  # rows with a next prompt token
                    # A few rows per log_softmax: its float64 temporaries are 2 MiB per row for Gemma's vocabulary.
                    for group in range(0, len(scored), _SOFTMAX_ROWS):
                        for offset, row in enumerate(log_softmax(scored[group : group + _SOFTMAX_ROWS]), start=group):
                            token = prompt_tokens[position + offset + 1]
                            entries.append((token, float(row[token]), self._top(llm, row, token, top_n)))
                    position += len(logits)
                last = logits[-1].copy()
            import llama_cpp

            vocab = llama_cpp.llama_model_get_vocab(llm.model)
            sampler = TokenSampler(params, prompt_tokens, GrammarConstraint(vocab, gbnf) if gbnf else None)
            def is_end(token: int) -> bool:
                return self._is_eog(token) and not params.ignore_eos

            def sampled():
                """Tokens sampled one by one, each with its logprob entry; the next is computed only when
                `stream_text` asks for it (not after a stop string or max_tokens)."""
                logits = last
                for _ in range(budget):
                    cancel.check()
                    token = sampler.sample(logits)
                    if is_end(token) and not echo:
                        yield token
                        return
                    row = log_softmax(logits[None, :])[0]
                    # With echo, an end-of-generation token keeps its entry too: lm-eval sends max_tokens=1 and
                    # drops the last entry as "the generated token"; without it, it would drop the prompt's last
                    # token instead (its text is empty and it is not counted in completion_tokens).
                    entries.append((token, float(row[token]), self._top(llm, row, token, top_n)))
                    if is_end(token):
                        yield token
                        return
                    sampler.accept(token)
                    yield token
                    logits = next(iter(context.decode([token], want_rows=True)))[0]

            chunks = list(stream_text(sampled(), ByteDecoder(lambda token: llm.detokenize([token])), params.stop,
                                      len(prompt_tokens), budget, is_end))
            # Token bytes are read while the context is held (the lock above); one builder for every engine.
            return LogprobCompletion.from_entries(
                entries, lambda token: llm.detokenize([token]), prompt_text,
                "".join(chunk.text for chunk in chunks), echo, chunks[-1].finish_reason, len(prompt_tokens),
                chunks[-1].completion_tokens,
            )

    def _top(self, llm: Llama, row: np.ndarray, token: int, n: int) -> dict[str, float]:
        """The n most likely tokens at a position plus the token actually there, by text."""
        best = np.argpartition(row, -n)[-n:] if n > 0 else np.array([], dtype=np.int64)
        chosen = sorted({*map(int, best), token}, key=lambda t: -row[t])
        return {self._piece(llm, t): float(row[t]) for t in chosen}

    @staticmethod
    def _piece(llm: Llama, token: int) -> str:
        return llm.detokenize([token]).decode("utf-8", errors="replace")
