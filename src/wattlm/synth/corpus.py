"""The documents a synthesis run reads: a corpus artifact's train/held-out splits, or a text set.

Questions about a held-out document must not teach the model that document, so the corpus's own
split carries over: chunks of `train/` documents make the training examples and chunks of `heldout/`
documents the held-out ones. A text set (plain files registered by reference) has no split; its
documents are divided by the seeded hash split (`shared.text.split_score`). Until issue 10 this split
hashed the id alone and ignored the seed; text sets therefore split differently from that change on,
and a different `seed` now gives a different split, as it does for a corpus.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from wattlm.datasets import SHARDS, read_texts
from wattlm.errors import WattError
from wattlm.registry import Artifact
from wattlm.shared.records import read_records
from wattlm.shared.text import split_score


def _shard_docs(folder: Path) -> Iterator[tuple[str, str]]:
    """(id, text) of every document in a split folder's shards (none for an empty split)."""
    for record in read_records(folder, fields=("id", "text"), pattern=SHARDS, allow_empty=True):
        yield str(record["id"]), record["text"]


def corpus_documents(corpus: Artifact, heldout_fraction: float, seed: int = 0) -> Iterator[tuple[str, str, str]]:
    """(doc_id, text, split) for every document of `corpus`."""
    if corpus.format == "text":
        for text in read_texts(corpus.path):
            doc_id = hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]
            yield doc_id, text, "heldout" if split_score(doc_id, seed) < heldout_fraction else "train"
        return
    train, heldout = corpus.path / "train", corpus.path / "heldout"
    if not train.is_dir():
        raise WattError(f"dataset {corpus.name} ({corpus.id}) has no train/ split: is it a corpus from `watt data build`?")
    heldout_docs = list(_shard_docs(heldout)) if heldout.is_dir() else []
    for doc_id, text in _shard_docs(train):
        if heldout_docs:
            yield doc_id, text, "train"
        else:  # a corpus built without a held-out split: make one from the documents
            yield doc_id, text, "heldout" if split_score(doc_id, seed) < heldout_fraction else "train"
    for doc_id, text in heldout_docs:
        yield doc_id, text, "heldout"
