"""llama.cpp contexts on a served GGUF: thread settings in one place, extra contexts made on first use."""

from __future__ import annotations

import atexit
import weakref
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


_open_llamas: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_open_llamas() -> None:
    for llm in list(_open_llamas):
        llm.close()


def open_llama(model_path: Path | str, **options) -> Llama:
    """`llama_cpp.Llama(model_path, verbose=False, **options)`, closed at exit if nobody closed it.

    A Llama still alive when the interpreter shuts down (a per-process cache, a frame kept by a
    traceback) is freed by its `__del__` after llama_cpp's module globals are gone, which prints
    "Exception ignored in Llama.__del__ ... 'NoneType' object is not callable" on the way out. The
    atexit hook closes it first, while the modules are whole; closing twice is harmless.
    """
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(model_path), verbose=False, **options)
    _open_llamas.add(llm)
    return llm


def timed_greedy(llm: Llama, prompt_ids: list[int], n_tokens: int) -> tuple[list[int], float]:
    """`n_tokens` greedy tokens of `llm` after `prompt_ids`, and the seconds they took after the first one
    (decode speed without the prompt: the export check's and the serve check's raw llama.cpp figure)."""
    import time

    generated: list[int] = []
    for token in llm.generate(prompt_ids, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0):
        if not generated:
            first_token_at = time.perf_counter()  # the prompt is read and the first token chosen by now
        generated.append(token)
        if len(generated) >= n_tokens:
            break
    return generated, time.perf_counter() - first_token_at


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

            self.llm = open_llama(self.path, n_ctx=self.n_ctx, flash_attn=self.flash_attn,
                                  **thread_args(self.n_threads), **self.options(llama_cpp))
        return self.llm

    def close(self) -> None:
        """Free the context now (keep-alive unloading), instead of whenever it is garbage-collected."""
        llm, self.llm = self.llm, None
        if llm is not None:
            llm.close()
