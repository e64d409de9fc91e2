"""A knowledge base on disk, and loading it back for search.

    kb.json        settings, embedding model, "no support" threshold, counts, sources
    chunks.jsonl   one chunk per line (source, title, heading path, offsets, text, validity)
    vectors.npy    float16 [chunks, 384] passage vectors, rows aligned with chunks.jsonl
    bm25/          the bm25s index over `tokens.tokenize(chunk.embed_text())`
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from wattlm.errors import NotFound, WattError
from wattlm.kb.chunking import Chunk
from wattlm.kb.embed import text_hash
from wattlm.kb.tokens import tokenize


@dataclass
class KbIndex:
    chunks: list[Chunk]
    vectors: np.ndarray  # float32 [n, 384], L2-normalised
    meta: dict = field(default_factory=dict)
    _bm25: object = None
    _terms: dict[int, frozenset[str]] = field(default_factory=dict, repr=False)

    def terms(self, row: int) -> frozenset[str]:
        """The BM25 words of one chunk, segmented once: the support check of every hit reads them, and
        segmenting five 300-character chunks with jieba on every question cost more than the BM25 search."""
        found = self._terms.get(row)
        if found is None:
            found = self._terms[row] = frozenset(tokenize(self.chunks[row].embed_text()))
        return found

    @property
    def bm25(self):
        if self._bm25 is None:
            self._bm25 = build_bm25(self.chunks)
        return self._bm25

    def known_vectors(self) -> dict[str, np.ndarray]:
        """text hash -> vector, for a new version that keeps some of these chunks."""
        return {text_hash(chunk.embed_text()): vector for chunk, vector in zip(self.chunks, self.vectors, strict=True)}

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "chunks.jsonl", "w", encoding="utf-8") as handle:
            for chunk in self.chunks:
                handle.write(json.dumps(chunk.to_record(), ensure_ascii=False) + "\n")
        np.save(folder / "vectors.npy", self.vectors.astype(np.float16))
        self.bm25.save(str(folder / "bm25"))
        (folder / "kb.json").write_text(json.dumps(self.meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def build_bm25(chunks: list[Chunk]):
    import bm25s

    retriever = bm25s.BM25()
    # An empty token list still gets a row ("" token), so rows stay aligned with chunks.
    retriever.index([tokenize(chunk.embed_text()) for chunk in chunks], show_progress=False)
    return retriever


def load_index(folder: Path) -> KbIndex:
    """Load a KB folder (cached per folder: a served KB is read once)."""
    return _load(str(Path(folder).resolve()))


@lru_cache(maxsize=8)
def _load(folder: str) -> KbIndex:
    import bm25s

    path = Path(folder)
    if not (path / "kb.json").is_file():
        raise NotFound(f"not a knowledge base folder (no kb.json): {path}")
    meta = json.loads((path / "kb.json").read_text(encoding="utf-8"))
    chunks = []
    with open(path / "chunks.jsonl", encoding="utf-8") as handle:
        chunks = [Chunk(**json.loads(line)) for line in handle if line.strip()]
    vectors = np.load(path / "vectors.npy").astype(np.float32)
    if len(vectors) != len(chunks):
        raise WattError(f"knowledge base {path} is damaged: {len(chunks)} chunks but {len(vectors)} vectors")
    bm25 = bm25s.BM25.load(str(path / "bm25")) if chunks else None
    return KbIndex(chunks, vectors, meta, bm25)
