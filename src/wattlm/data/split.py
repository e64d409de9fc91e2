"""The train / held-out split, decided per document by a hash of its id and the seed.

A hash rather than a shuffle: a document's side depends on nothing but its own id, so adding files to
the corpus never moves an existing document between train and held-out (which would leak evaluation
text into training on the next run).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from wattlm.data.document import Document


def split_score(doc_id: str, seed: int) -> float:
    """A uniform number in [0, 1) fixed by (seed, id)."""
    digest = hashlib.sha256(f"{seed}:{doc_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_documents(
    docs: Sequence[Document], fraction: float, seed: int
) -> tuple[list[Document], list[Document]]:
    """(train, heldout), both in input order. With >= 2 documents each side gets at least one.

    The guarantee is what makes a tiny corpus usable end to end (eval needs a held-out document, train
    needs a training one); it moves the single document closest to the threshold, so it is as
    deterministic as the hash itself.
    """
    scores = [split_score(doc.id, seed) for doc in docs]
    heldout_flags = [score < fraction for score in scores]
    if len(docs) >= 2:
        if not any(heldout_flags):
            heldout_flags[min(range(len(docs)), key=scores.__getitem__)] = True
        elif all(heldout_flags):
            heldout_flags[max(range(len(docs)), key=scores.__getitem__)] = False
    train = [doc for doc, heldout in zip(docs, heldout_flags, strict=False) if not heldout]
    heldout = [doc for doc, heldout in zip(docs, heldout_flags, strict=False) if heldout]
    return train, heldout
