"""Cache keys: a stage's output is reused when the key of its inputs and settings is unchanged.

Keys are *content* addressed: they hash file bytes, settings, and for a derived artifact its parents'
own content keys; never a path or an artifact id. So the same recipe run from a second checkout (or a
CI runner, or a moved folder) against the same workspace finds every stage's output again.

Every artifact's `cache_key` is its content key: a stage registers its output under the key of its
inputs, and an artifact registered by reference (a user's model folder, a text folder) under the hash
of its files. `content_key(artifact)` reads it back for the keys of what is made from it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import wattlm
from wattlm.registry import Artifact


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


def files_key(kind: str, paths: Iterable[Path]) -> str:
    """The content key of an artifact registered by reference: what it is and the bytes of its files."""
    return fingerprint(kind, files_fingerprint(paths))


def content_key(artifact: Artifact) -> str:
    """The identity of an artifact's content, for the keys of what is made from it.

    Its `cache_key` when it has one (every stage output, and every reference registered since content
    keys exist); otherwise, for rows of older workspaces, the hash of its files (a GGUF model's one file,
    not the folder it sits in)."""
    if artifact.cache_key:
        return artifact.cache_key
    file = artifact.meta.get("file")
    return files_key(artifact.kind, [artifact.path / file if file else artifact.path])


def without_paths(settings: object, files: Iterable[Path]) -> object:
    """`settings` with each of `files`' paths (as a value or a dict key) replaced by a hash of its bytes.

    Settings resolved against a recipe's folder name absolute paths; the same recipe in another checkout
    must give the same key, and an edited file a new one."""
    by_path = {str(path): (files_fingerprint([path]) if Path(path).exists() else None) for path in files}

    def portable(value: object) -> object:
        if isinstance(value, dict):
            return {(f"file:{by_path[k]}" if k in by_path else k): portable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [portable(v) for v in value]
        if isinstance(value, str) and value in by_path:
            return f"file:{by_path[value]}"
        return value

    return portable(settings)
