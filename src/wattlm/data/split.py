"""The train / held-out split, decided per document by a hash of its id and the seed.

A hash rather than a shuffle: a document's side depends on nothing but its own id, so adding files to
the corpus never moves an existing document between train and held-out (which would leak evaluation
text into training on the next run).
"""

from __future__ import annotations

from collections.abc import Sequence

from wattlm.data.document import Document
from wattlm.shared.text import split_score


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
