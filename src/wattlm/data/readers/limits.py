"""Limits on what one untrusted input file may cost: bytes read, bytes unzipped, seconds.

The data stage reads whatever lands in an input folder (an upload, a crawl, a share). One hostile or
broken file must cost one line in report.json, never the run: a file over a limit is refused with a
reason (`FileRefused.reason`, the `reason` of its entry in `errors`) and the build goes on.
docs/security-inputs.md lists every limit, its default and what happens on a violation.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import BaseModel, ConfigDict, Field

from wattlm.data.readers.base import ReadError

MiB = 2**20


class ReadLimits(BaseModel):
    """The `limits:` section of the data settings."""

    model_config = ConfigDict(extra="forbid")

    max_file_bytes: int = Field(
        256 * MiB, ge=1, description="Most bytes read into memory for one file (or one piece of a large JSONL/text "
        "file cut by split_bytes); a larger one fails with reason too_large, before it is read.")
    max_unzipped_bytes: int = Field(
        256 * MiB, ge=1, description="Most bytes a DOCX (a zip) may decompress to, counted while decompressing; "
        "more fails with reason zip_too_large.")
    max_zip_ratio: float = Field(
        100.0, gt=1, description="Most a DOCX member over 1 MiB may expand (uncompressed / compressed size; "
        "Word's XML compresses 5-20x, a zip bomb 1000x); more fails with reason zip_bomb.")
    max_zip_members: int = Field(10_000, ge=1, description="Most files inside one DOCX (reason zip_bomb).")
    file_timeout_s: float = Field(
        120.0, ge=0, description="Seconds one file may take to read and parse (0: no limit); more fails with "
        "reason timeout. Enforced in worker processes and in the main thread (SIGALRM).")


class FileRefused(ReadError):
    """A file not read on purpose: over a limit, or not a regular file inside the input folder."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class FileTimeout(BaseException):
    """Raised by the alarm inside a parser. A BaseException, so a parser's `except Exception` (pypdf
    has many) cannot swallow it and keep looping."""


def _on_alarm(signum, frame) -> None:
    raise FileTimeout


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise FileTimeout in this thread after `seconds`, again every second until the block ends.

    SIGALRM is delivered to the main thread only, so the limit holds where files are read: in the
    process-pool workers (their tasks run on the main thread) and in a `workers: 1` build run from a
    main thread. Elsewhere (a build started from another thread) the block runs without it; the size
    limits still hold. Pure-Python parsers (pypdf) stop at the next bytecode; a C call (zlib, lxml) is
    bounded by the size limits and ends before the alarm is seen."""
    usable = seconds > 0 and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        while True:  # an alarm landing here must not leave the timer armed for code after the file
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
                break
            except FileTimeout:
                continue
