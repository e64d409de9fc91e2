"""A `rag` task file from the synthesized QA pairs: labels for retrieval and grounded answers, made free.

Every kept QA pair records the passage it was written from, so its document is the ground truth of
where the answer is. Only pairs from **held-out** documents are written: those are never trained on,
so `watt eval run --kb NAME --task <synth artifact>/rag.jsonl` measures answering, not recall of the
training data. Each line is `{"question", "answer", "source", "chunk_id", "passage"}`; `source` is the
corpus document's source path (relative to the data stage's input folder, which `source_matches` in
eval/grounded.py finds at the end of the KB's paths). Documents without a source (a plain text set)
give no lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from wattlm.registry import Artifact
from wattlm.shared.records import atomic_write_jsonl, read_records

FILE = "rag.jsonl"


def document_sources(corpus: Artifact) -> dict[str, str]:
    """doc id -> the document's source path, for a corpus with a `source` field (empty otherwise)."""
    if corpus.format == "text":
        return {}
    sources = {}
    for split in ("train", "heldout"):
        folder = corpus.path / split
        if folder.is_dir():
            for record in read_records(folder, fields=("id",), pattern="shard-*", allow_empty=True):
                if record.get("source"):
                    sources[str(record["id"])] = str(record["source"])
    return sources


def rag_rows(corpus: Artifact, candidates: Iterable) -> list[dict]:
    """One line per kept QA pair of a held-out document that has a source."""
    sources = document_sources(corpus)
    rows = []
    for cand in candidates:
        chunk = cand.job.chunk
        if cand.job.kind != "qa" or chunk.split != "heldout" or not cand.item.question:
            continue
        if chunk.doc_id in sources:
            rows.append({"question": cand.item.question, "answer": cand.item.answer, "source": sources[chunk.doc_id],
                         "chunk_id": chunk.id, "passage": chunk.text})
    return rows


def write_rag(staged: Path, corpus: Artifact, candidates: Iterable) -> int:
    """Write `rag.jsonl` beside the splits (only when there is a line to write); the number of lines."""
    rows = rag_rows(corpus, candidates)
    if rows:
        atomic_write_jsonl(staged / FILE, rows)
    return len(rows)
