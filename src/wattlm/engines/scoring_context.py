"""The llama.cpp context behind echo/logprobs scoring: logits only for the rows a request reads, one
context per base model shared by its LoRA engines.

`Llama(logits_all=True)` keeps an (n_ctx, n_vocab) float32 array plus an n_batch × n_vocab output
buffer in llama.cpp (2 GiB + 512 MiB for Gemma 3's 262k vocabulary at n_ctx 2048). Here the context is
made with `logits_all=False` and micro-batches of `ROWS` tokens, and prompts are decoded through
`llama_decode` with the logits flag set only on the positions whose row is read (every position for
echo, the last one otherwise): llama.cpp's output buffer and compute graph then hold at most `ROWS`
rows, and nothing grows with the prompt.

LoRA engines over the same GGUF share one `ScoringContext` (adapters are set per request with
`llama_set_adapters_lora`, as llama.cpp keeps them per context): one KV cache and one set of buffers
per base model instead of one per adapter, and the weights stay memory-mapped (llama-cpp-python
copies them into memory when a `Llama` is made with `lora_path`). The price: scoring requests of
those engines take turns on the context's lock.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from wattlm.engines.compute_thread import compute
from wattlm.engines.lazy_llama import LazyLlama
from wattlm.errors import WattError

if TYPE_CHECKING:
    from llama_cpp import Llama

ROWS = 64  # tokens per llama_decode call, so also the most logits rows llama.cpp holds at once

# (GGUF, n_ctx, n_threads, flash_attn): engines that differ in any of them must not share a context (the
# kernels must be those of the engine's generation context).
_SHARED: dict[tuple[Path, int, int | None, bool], ScoringContext] = {}
_SHARED_LOCK = threading.Lock()


def shared_key(gguf_path: Path, n_ctx: int, n_threads: int | None,
               flash_attn: bool) -> tuple[Path, int, int | None, bool]:
    return Path(gguf_path).resolve(), n_ctx, n_threads, flash_attn


class ScoringContext:
    """One lazily created scoring context; `acquire` it per engine and `release` it when the engine closes."""

    def __init__(self, gguf_path: Path, n_ctx: int, n_threads: int | None, flash_attn: bool = False) -> None:
        self.key = shared_key(gguf_path, n_ctx, n_threads, flash_attn)
        self.lock = threading.Lock()  # one scoring request at a time on this context
        self.users = 0
        self._lazy = LazyLlama(gguf_path, n_ctx, n_threads,
                               options=lambda llama_cpp: {"logits_all": False, "n_batch": ROWS, "n_ubatch": ROWS},
                               flash_attn=flash_attn)
        self._batch = None
        self._adapters: dict[Path, object] = {}  # LoRA file -> llama_adapter_lora_p, loaded on first use
        self._active: Path | None = None
        self.n_past = 0

    @classmethod
    def acquire(cls, gguf_path: Path, n_ctx: int, n_threads: int | None, flash_attn: bool = False) -> ScoringContext:
        key = shared_key(gguf_path, n_ctx, n_threads, flash_attn)
        with _SHARED_LOCK:
            context = _SHARED.get(key)
            if context is None:
                context = _SHARED[key] = cls(gguf_path, n_ctx, n_threads, flash_attn)
            context.users += 1
            return context

    def release(self) -> None:
        """One engine is done with it; the last one frees the llama.cpp context (under the lock, so never mid-request)."""
        with _SHARED_LOCK:
            self.users -= 1
            if self.users > 0:
                return
            if _SHARED.get(self.key) is self:
                del _SHARED[self.key]
        with self.lock:
            self._free()

    def _free(self) -> None:
        llm = self._lazy.llm
        if llm is not None and self._batch is not None:
            import llama_cpp

            llama_cpp.llama_batch_free(self._batch)
        self._batch, self._adapters, self._active = None, {}, None  # adapters are freed with the model
        self._lazy.close()

    @property
    def llm(self) -> Llama | None:
        return self._lazy.llm

    def start(self, lora: Path | None) -> Llama:
        """Under `lock`: the context, emptied and carrying `lora`'s adapter (or none), ready for a new request."""
        import llama_cpp

        llm = self._lazy.get()
        if self._batch is None:
            self._batch = llama_cpp.llama_batch_init(ROWS, 0, 1)
        if lora != self._active:
            self._set_adapter(llm, lora)
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm.ctx), True)
        self.n_past = 0
        return llm

    def _set_adapter(self, llm: Llama, lora: Path | None) -> None:
        import llama_cpp

        if lora is None:
            status = llama_cpp.llama_set_adapters_lora(llm.ctx, None, 0, None)
        else:
            adapter = self._adapters.get(lora)
            if adapter is None:
                adapter = llama_cpp.llama_adapter_lora_init(llm.model, str(lora).encode("utf-8"))
                if not adapter:
                    raise WattError(f"cannot load LoRA adapter {lora}: llama.cpp rejected it (not a GGUF LoRA of this model?)")
                self._adapters[lora] = adapter
            status = llama_cpp.llama_set_adapters_lora(llm.ctx, (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter), 1,
                                                       (ctypes.c_float * 1)(1.0))
        if status != 0:
            raise WattError(f"llama.cpp could not set LoRA adapter {lora} on the scoring context")
        self._active = lora

    def decode(self, tokens: list[int], want_rows: bool) -> Iterator[np.ndarray]:
        """Feed `tokens` after those already decoded, `ROWS` at a time; per chunk, yield its (rows, n_vocab)
        float32 logits when `want_rows`, else only the last token's (1, n_vocab). The arrays are views of
        llama.cpp's buffer, valid until the next decode: use them before asking for the next chunk."""
        import llama_cpp

        llm, batch = self._lazy.llm, self._batch
        assert llm is not None and batch is not None, "decode before start"
        for start in range(0, len(tokens), ROWS):
            chunk = tokens[start : start + ROWS]
            last = start + len(chunk) == len(tokens)
            for index, token in enumerate(chunk):
                batch.token[index] = token
                batch.pos[index] = self.n_past + index
                batch.n_seq_id[index] = 1
                batch.seq_id[index][0] = 0
                batch.logits[index] = want_rows or (last and index == len(chunk) - 1)
            batch.n_tokens = len(chunk)
            # On the process's compute thread, as every llama.cpp graph (see engines/compute_thread.py).
            status = compute(llama_cpp.llama_decode, llm.ctx, batch)
            if status != 0:
                raise WattError(f"llama_decode failed with status {status} while scoring")
            self.n_past += len(chunk)
            rows = len(chunk) if want_rows else int(last)
            if rows:
                yield np.ctypeslib.as_array(llama_cpp.llama_get_logits(llm.ctx), shape=(rows, llm.n_vocab()))
