"""llama.cpp contexts on a served GGUF: thread settings in one place, extra contexts made on first use."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # llama_cpp is heavy: imported when a context is built, not at import time
    from llama_cpp import Llama


def default_threads() -> int:
    """The CPU cores this process may run on: the thread count when none is given.

    llama.cpp's own default is 4 threads (`llama_context_default_params`) whatever the machine, and
    `Llama`'s is half the cores for decode: on a 2-core machine the first oversubscribes the cores (its
    OpenMP threads spin-wait at every barrier, and a descheduled one stalls the others: see the thread
    table in docs/serving.md) and the second leaves one core idle.
    """
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no sched_getaffinity (macOS)
        return max(1, os.cpu_count() or 1)


def thread_args(n_threads: int | None) -> dict[str, int]:
    """Llama(...) thread options: the same count for decode and prompt processing (default: every core)."""
    threads = n_threads or default_threads()
    return {"n_threads": threads, "n_threads_batch": threads}


class LazyLlama:
    """A second context (scoring, embeddings) that costs nothing until a request needs it."""

    def __init__(self, gguf_path: Path, n_ctx: int, n_threads: int | None, options=lambda llama_cpp: {},
                 flash_attn: bool = False) -> None:
        # `options(llama_cpp)` gives the extra Llama(...) arguments; a function, so they may name
        # llama_cpp's constants without importing it before a context is needed. `flash_attn` follows
        # the engine's generation context, so scores and vectors come from the same attention kernels.
        self.path, self.n_ctx, self.n_threads, self.options = Path(gguf_path), n_ctx, n_threads, options
        self.flash_attn = flash_attn
        self.llm: Llama | None = None

    def get(self) -> Llama:
        if self.llm is None:
            import llama_cpp

            self.llm = llama_cpp.Llama(model_path=str(self.path), n_ctx=self.n_ctx, verbose=False,
                                       flash_attn=self.flash_attn, **thread_args(self.n_threads),
                                       **self.options(llama_cpp))
        return self.llm

    def close(self) -> None:
        """Free the context now (keep-alive unloading), instead of whenever it is garbage-collected."""
        llm, self.llm = self.llm, None
        if llm is not None:
            llm.close()
