"""Third-party log lines go to a run's log file, not the user's terminal (unless `--verbose`).

llama.cpp writes its own lines (model load, `load: control-looking token`, `llama_kv_cache_iswa:
using full-size SWA cache`, one quantisation warning per tensor) through its C log callback.
llama-cpp-python installs a callback that maps levels by an older ggml enum, so today's WARN (3) is
taken for ERROR and printed to stderr even with `verbose=False`. `route_native_logs` replaces that
callback with one that hands each line to the Python logger `llama.cpp`; `third_party_logs` sends that
logger, transformers' records that pass its verbosity (models/hf.py keeps errors only) and Python's
warnings to the log file (and to stderr only when verbose).
Progress bars that plain tqdm draws (transformers' GGUF de-quantiser) are switched off by
`TQDM_DISABLE`, which tqdm reads when it is imported: the CLI sets it before anything imports tqdm.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NATIVE = "llama.cpp"
# ggml_log_level as llama.cpp defines it today: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5.
_GGML_LEVELS = {0: logging.CRITICAL, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
# bitsandbytes warns at import (peft imports it) when its optional CPU kernels package is missing.
_THIRD_PARTY = (NATIVE, "transformers", "py.warnings", "torch", "accelerate", "peft", "bitsandbytes")
OURS = "wattlm.run"  # the run's own progress lines: written to the log file beside the third-party ones
_callback = None  # the ctypes callback must stay referenced for as long as llama.cpp may call it
_pending: list[str] = []  # llama.cpp sends a line in pieces; it is logged when its newline arrives
_pending_level = [logging.INFO]
_pending_lock = threading.Lock()  # engine threads log too


def _emit(level: int, text: str) -> None:
    with _pending_lock:
        if level != 5:  # CONT continues the previous line at its level
            _pending_level[0] = _GGML_LEVELS.get(level, logging.INFO)
        _pending.append(text)
        if not text.endswith("\n"):
            return
        line, line_level = "".join(_pending).rstrip("\n"), _pending_level[0]
        _pending.clear()
    if line.strip():
        logging.getLogger(NATIVE).log(line_level, line)


def route_native_logs() -> bool:
    """llama.cpp's (and ggml's) log lines -> the Python logger `llama.cpp`; False without llama-cpp-python."""
    global _callback
    if _callback is not None:
        return True
    try:
        import ctypes

        import llama_cpp
        import llama_cpp._logger  # noqa: F401  (installs its callback at import; ours must come after it)
    except ImportError:
        return False

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data) -> None:
        _emit(level, text.decode("utf-8", errors="replace"))

    _callback = callback
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    return True


def hide_progress_bars() -> None:
    """Plain tqdm bars (transformers' GGUF de-quantiser) off; call before tqdm is imported."""
    os.environ.setdefault("TQDM_DISABLE", "1")


@contextmanager
def third_party_logs(log_file: Path | None, verbose: bool = False) -> Iterator[Path | None]:
    """While the block runs, llama.cpp, transformers and Python warnings go to `log_file` (appended);
    with `verbose` they are also printed to stderr. Nothing of theirs reaches stderr otherwise.
    The logger `wattlm.run` (a run's progress lines, already on the terminal) writes to the file only."""
    to_file: list[logging.Handler] = []
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        to_file.append(file_handler)
    to_terminal: list[logging.Handler] = [logging.StreamHandler(sys.stderr)] if verbose else []
    route_native_logs()
    routes = {name: to_file + to_terminal for name in _THIRD_PARTY} | {OURS: to_file}
    saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate,
                    logging.getLogger(name).level) for name in routes}
    logging.captureWarnings(True)
    try:
        for name, handlers in routes.items():
            logger = logging.getLogger(name)
            logger.handlers = handlers or [logging.NullHandler()]
            logger.propagate = False  # never up to the root logger, whose handler may print
            logger.setLevel(logging.DEBUG if verbose else logging.INFO)
        yield log_file
    finally:
        logging.captureWarnings(False)
        for name, (old_handlers, propagate, level) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers, logger.propagate = old_handlers, propagate
            logger.setLevel(level)
        for handler in to_file + to_terminal:
            handler.close()
