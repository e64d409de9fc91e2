"""The documents a synthesis run reads: a corpus artifact's train/held-out splits, or a text set.

Questions about a held-out document must not teach the model that document, so the corpus's own
split carries over: chunks of `train/` documents make the training examples and chunks of `heldout/`
documents the held-out ones. A text set (plain files registered by reference) has no split; its
documents are divided by a hash of their id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from wattlm.errors import WattError
from wattlm.registry import Artifact
from wattlm.textsets import jsonl_records


def _shard_docs(folder: Path) -> Iterator[tuple[str, str]]:
    """(id, text) of every document in a split folder's shard-*.jsonl / shard-*.parquet files."""
    for shard in sorted([*folder.glob("shard-*.jsonl"), *folder.glob("shard-*.parquet")]):
        if shard.suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(shard, columns=["id", "text"])
            yield from zip(table.column("id").to_pylist(), table.column("text").to_pylist(), strict=True)
            continue
        for number, record in enumerate(jsonl_records(shard), 1):  # it names the line of invalid JSON
            if "id" not in record or "text" not in record:
                raise WattError(f"{shard}: record {number}: expected a JSON object with 'id' and 'text'")
            yield str(record["id"]), record["text"]


def _hash_fraction(key: str) -> float:
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0x100000000


def corpus_documents(corpus: Artifact, heldout_fraction: float) -> Iterator[tuple[str, str, str]]:
    """(doc_id, text, split) for every document of `corpus`."""
    if corpus.format == "text":
        from wattlm.textsets import read_texts

        for text in read_texts(corpus.path):
            doc_id = hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]
            yield doc_id, text, "heldout" if _hash_fraction(doc_id) < heldout_fraction else "train"
        return
    train, heldout = corpus.path / "train", corpus.path / "heldout"
    if not train.is_dir():
        raise WattError(f"dataset {corpus.name} ({corpus.id}) has no train/ split: is it a corpus from `watt data build`?")
    heldout_docs = list(_shard_docs(heldout)) if heldout.is_dir() else []
    for doc_id, text in _shard_docs(train):
        if heldout_docs:
            yield doc_id, text, "train"
        else:  # a corpus built without a held-out split: make one from the documents
            yield doc_id, text, "heldout" if _hash_fraction(doc_id) < heldout_fraction else "train"
    for doc_id, text in heldout_docs:
        yield doc_id, text, "heldout"
