"""Cache keys: a stage's output is reused when the key of its inputs and settings is unchanged."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import wattlm


def fingerprint(*parts: object) -> str:
    """A stable hash of JSON-able parts plus the wattlm version (new code invalidates old outputs)."""
    blob = json.dumps([wattlm.__version__, *parts], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def files_fingerprint(paths: Iterable[Path]) -> str:
    """Hash of every file's relative name and bytes under the given files/folders (sorted)."""
    digest = hashlib.sha256()
    for root in paths:
        root = Path(root)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for file in files:
            rel = file.name if file == root else str(file.relative_to(root))
            digest.update(rel.encode())
            with open(file, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:32]
