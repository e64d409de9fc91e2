"""Atomic file writes and JSONL shards.

Every file is written to a temporary name in its final folder and then renamed (os.replace is atomic
on POSIX and Windows), so a crash never leaves a half-written shard that a later run or
`datasets.load_dataset` would read as if it were complete.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from wattlm.data.document import Document

_SHARD_NAME = re.compile(r"shard-\d{5}\.jsonl")


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_shards(docs: Sequence[Document], folder: Path, shard_docs: int) -> list[Path]:
    """Write `docs` as folder/shard-00000.jsonl, ... (at most `shard_docs` lines each).

    Shards left by an earlier, larger run are removed afterwards: a glob over the folder must see
    exactly this run's documents. No documents means no shards (an empty folder).
    """
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for start in range(0, len(docs), shard_docs):
        path = folder / f"shard-{len(written):05d}.jsonl"
        lines = (json.dumps(doc.to_record(), ensure_ascii=False) for doc in docs[start : start + shard_docs])
        atomic_write_text(path, "\n".join(lines) + "\n")
        written.append(path)
    for stale in folder.iterdir():
        if _SHARD_NAME.fullmatch(stale.name) and stale not in written:
            stale.unlink()
    return written
