"""Sentence embeddings from the served GGUF (`/v1/embeddings`).

A third llama.cpp context over the same weights, created on the first embeddings request, in
embedding mode with mean pooling over the last hidden states; vectors are L2-normalised (cosine
similarity is then a dot product). One request at a time behind a lock; a text must fit in `n_ctx`.
A causal language model is not trained as a sentence encoder: these vectors rank similar texts
above unrelated ones, but a dedicated embedding model does better.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from wattlm.engines import cancel
from wattlm.engines.base import PromptTooLong
from wattlm.engines.compute_thread import compute
from wattlm.engines.lazy_llama import LazyLlama
from wattlm.errors import WattError


class Embedder:
    def __init__(self, gguf_path: Path, n_ctx: int, n_threads: int | None, name: str,
                 lora_path: Path | None = None, flash_attn: bool = False) -> None:
        self._n_ctx = n_ctx
        self._name = name
        self._lock = threading.Lock()
        self._context = LazyLlama(gguf_path, n_ctx, n_threads, options=lambda llama_cpp: {
            "n_batch": n_ctx, "n_ubatch": n_ctx, "embedding": True, "pooling_type": llama_cpp.LLAMA_POOLING_TYPE_MEAN,
            **({"lora_path": str(lora_path)} if lora_path is not None else {}),
        }, flash_attn=flash_attn)

    def close(self) -> None:
        self._context.close()

    def embed(self, texts: Sequence[str]) -> tuple[list[list[float]], int]:
        """One normalised vector per text, and the number of tokens read."""
        vectors, used = [], 0
        with cancel.holding(self._lock):  # given up when the request goes away while it waits
            llm = self._context.get()
            for text in texts:
                cancel.check()  # a gone request stops at the next text
                count = len(llm.tokenize(text.encode("utf-8"), add_bos=True, special=True))
                if not text:
                    raise WattError("cannot embed an empty string")
                if count > self._n_ctx:
                    raise PromptTooLong(f"input is {count} tokens but the context window of '{self._name}' is {self._n_ctx}")
                # On the process's compute thread, as every llama.cpp graph (see engines/compute_thread.py).
                vectors.append(list(compute(llm.embed, text, normalize=True, truncate=False)))
                used += count
        return vectors, used
