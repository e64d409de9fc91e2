"""llama.cpp's own batched decode with no server around it: the most tokens/s that any server built on
llama.cpp can reach on this machine, at each number of concurrent sequences.

`serve_bench.py` times it next to `watt serve` and llama-cpp-python's server, so one run shows how close the
batch engine comes to the ceiling and how far the ceiling itself is from the peer. The context is built with
the batch engine's own settings (`wattlm.engines.batching.scheduler.batch_context_params`: one KV stream per
sequence, one micro-batch per step, the same threads and attention kernels), so the only difference from
`watt serve` is everything around `llama_decode`: HTTP, tokenizing, sampling, streaming, prompt reading.

Each run reads `clients` distinct prompts into their own sequences (not timed), then times `max_tokens`
steps of one `llama_decode` holding one token of every sequence, each with its logits row, as a decoding
step of the batch engine does. The tokens fed are fixed: a step costs the same whatever their values.
"""

from __future__ import annotations

import time
from pathlib import Path

PREFILL_CHUNK = 128  # the batch engine's default `prefill_chunk`: part of its batch capacity


class BatchCeiling:
    """A loaded model and a multi-sequence context; `run` has `Server.run`'s signature for `alternate`."""

    kind = "llama.cpp batched"

    def __init__(self, model: Path, n_ctx: int, max_seqs: int, threads: int, flash_attn: bool, prompts: list[str]) -> None:
        import llama_cpp

        from wattlm.engines.batching.model import GgufModel
        from wattlm.engines.batching.scheduler import batch_context_params

        self._llama, self._prompts, self.max_seqs = llama_cpp, prompts, max_seqs
        self._model = GgufModel(model)  # the batch engine's own loading and tokenizer
        params = batch_context_params(llama_cpp, n_ctx, max_seqs, PREFILL_CHUNK, threads, flash_attn)
        self._ctx = llama_cpp.llama_init_from_model(self._model.handle, params)
        if not self._ctx:
            self._model.close()
            raise RuntimeError(f"llama.cpp could not create a context of {params.n_ctx} cells")
        self._batch = llama_cpp.llama_batch_init(params.n_batch, 0, 1)
        self.run(1, 1, 8, 0.0)  # pages the weights in; not counted

    def _decode(self, tokens: list[tuple[int, int, int, bool]]) -> None:
        """One `llama_decode` of (token, position, sequence, wants logits) entries."""
        batch = self._batch
        batch.n_tokens = len(tokens)
        for index, (token, position, sequence, logits) in enumerate(tokens):
            batch.token[index], batch.pos[index], batch.n_seq_id[index] = token, position, 1
            batch.seq_id[index][0], batch.logits[index] = sequence, logits
        if self._llama.llama_decode(self._ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")

    def run(self, clients: int, rounds: int, max_tokens: int, temperature: float) -> dict:
        """Tokens/s of `max_tokens` decoding steps of `clients` sequences (`rounds` and `temperature` are
        unused: the ceiling samples nothing)."""
        if clients > self.max_seqs:
            raise ValueError(f"{clients} sequences need a context of at least {clients} (max_seqs {self.max_seqs})")
        self._llama.llama_memory_clear(self._llama.llama_get_memory(self._ctx), True)
        positions = []
        for sequence in range(clients):
            prompt = self._model.tokenize(self._prompts[sequence % len(self._prompts)])[:PREFILL_CHUNK]
            self._decode([(token, at, sequence, at == len(prompt) - 1) for at, token in enumerate(prompt)])
            positions.append(len(prompt))
        start = time.perf_counter()
        for step in range(max_tokens):
            self._decode([(positions[sequence] % 1000 + 100, positions[sequence] + step, sequence, True)
                          for sequence in range(clients)])
        wall = time.perf_counter() - start
        tokens = clients * max_tokens
        return {"clients": clients, "requests": clients, "errors": 0, "tokens": tokens, "tok_s": tokens / wall,
                "step_ms": wall / max_tokens * 1e3}

    def close(self) -> None:
        llama_cpp = self._llama
        llama_cpp.llama_batch_free(self._batch)
        llama_cpp.llama_free(self._ctx)
        self._model.close()
