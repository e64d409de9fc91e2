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
from typing import TYPE_CHECKING

from wattlm.errors import WattError
from wattlm.serve.engine import PromptTooLong

if TYPE_CHECKING:
    from llama_cpp import Llama


class Embedder:
    def __init__(self, gguf_path: Path, n_ctx: int, n_threads: int | None, name: str) -> None:
        self._path = Path(gguf_path)
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._name = name
        self._lock = threading.Lock()
        self._llm: Llama | None = None

    def _load(self) -> Llama:
        if self._llm is None:
            import llama_cpp

            threads = {} if self._n_threads is None else {"n_threads": self._n_threads, "n_threads_batch": self._n_threads}
            self._llm = llama_cpp.Llama(
                model_path=str(self._path), n_ctx=self._n_ctx, n_batch=self._n_ctx, n_ubatch=self._n_ctx,
                embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN, verbose=False, **threads,
            )
        return self._llm

    def embed(self, texts: Sequence[str]) -> tuple[list[list[float]], int]:
        """One normalised vector per text, and the number of tokens read."""
        vectors, used = [], 0
        with self._lock:
            llm = self._load()
            for text in texts:
                count = len(llm.tokenize(text.encode("utf-8"), add_bos=True, special=True))
                if not text:
                    raise WattError("cannot embed an empty string")
                if count > self._n_ctx:
                    raise PromptTooLong(f"input is {count} tokens but the context window of '{self._name}' is {self._n_ctx}")
                vectors.append(list(llm.embed(text, normalize=True, truncate=False)))
                used += count
        return vectors, used
