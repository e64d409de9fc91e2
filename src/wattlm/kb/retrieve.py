"""Search a knowledge base: BM25, dense, or both fused by reciprocal rank (the default).

Extension point: a `Retriever` ranks chunk rows for a question; `RETRIEVERS` names them. A new one
(say, a reranker over the hybrid list) is one class and one table entry.

After ranking, documents in force come first: a superseded chunk's score is multiplied by
`superseded_penalty` and the hit says `superseded: true`. Whether a hit *supports* an answer is a
separate question: `support` = cosine(question, chunk) + LEXICAL_WEIGHT x the share of the question's
words (two characters or more) found in the chunk, compared with the threshold that `calibrate.py`
measured on this KB when it was built (see docs/kb.md). The cosine alone separates poorly: e5 gives any
question-shaped text 0.8+ against a technical corpus; the lexical share is near zero for a question
about cooking or football and rarely so for one about the KB's subject.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from wattlm.errors import WattError
from wattlm.kb.config import KbConfig
from wattlm.kb.embed import embed_query
from wattlm.kb.index import KbIndex, load_index
from wattlm.kb.tokens import tokenize

LEXICAL_WEIGHT = 0.1


def support_score(query_words: set[str], chunk_words: frozenset[str] | set[str], similarity: float) -> float:
    """How well one chunk (its BM25 words) supports answering the question (higher is better; see the
    module doc)."""
    if not query_words:
        return similarity
    shared = query_words & chunk_words
    return similarity + LEXICAL_WEIGHT * len(shared) / len(query_words)


@dataclass
class Hit:
    rank: int
    id: str
    source: str
    title: str
    heading: str
    text: str
    start: int
    end: int
    score: float  # the retriever's score after the validity preference (RRF, BM25 or cosine)
    similarity: float  # cosine of question and chunk
    support: float  # similarity + lexical share: what `supported` is judged on
    supported: bool
    superseded: bool
    superseded_by: str | None = None
    effective: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _top(scores: np.ndarray, n: int) -> list[tuple[int, float]]:
    n = min(n, len(scores))
    if n == 0:
        return []
    rows = np.argpartition(-scores, n - 1)[:n]
    rows = rows[np.argsort(-scores[rows], kind="stable")]
    return [(int(row), float(scores[row])) for row in rows if scores[row] > 0]


class Retriever(ABC):
    """Ranks chunk rows of one KB for a question; higher score is better."""

    name: ClassVar[str]
    needs_vector: ClassVar[bool] = False  # True: `rank` reads the question's embedding

    def __init__(self, config: KbConfig) -> None:
        self.config = config

    @abstractmethod
    def rank(self, index: KbIndex, query: str, query_vector: np.ndarray | None, n: int) -> list[tuple[int, float]]:
        """The best `n` (row, score) pairs, best first."""


class Bm25Retriever(Retriever):
    name = "bm25"

    def rank(self, index, query, query_vector, n):
        terms = tokenize(query)
        if not terms:
            return []
        return _top(np.asarray(index.bm25.get_scores(terms)), n)


class DenseRetriever(Retriever):
    name = "dense"
    needs_vector = True

    def rank(self, index, query, query_vector, n):
        # einsum: one thread, no BLAS. OpenBLAS splits `vectors @ q` over both cores, and when other work
        # holds a core (a model answering on the same machine) its threads wait on each other: 10k chunks
        # took 47 ms that way on the loaded 2-core machine, 0.55 ms on one thread (docs/kb.md).
        return _top(np.einsum("ij,j->i", index.vectors, query_vector), n)


class HybridRetriever(Retriever):
    """Weighted reciprocal rank fusion: each list adds weight / (k + rank); robust to the lists' unlike score
    scales. BM25 weighs twice dense and k is 1 (tuned on a dev set of 91 questions, docs/kb.md): on these
    documents BM25 alone finds 96% of the sources first, dense 70%, so dense should reorder only where BM25
    is unsure, and an equal-weight fusion (k 60) ranked below BM25 alone."""

    name = "hybrid"
    needs_vector = True

    def rank(self, index, query, query_vector, n):
        fused: dict[int, float] = {}
        lists = ((Bm25Retriever(self.config), self.config.bm25_weight),
                 (DenseRetriever(self.config), self.config.dense_weight))
        for retriever, weight in lists:
            if weight <= 0:
                continue
            for position, (row, _) in enumerate(retriever.rank(index, query, query_vector, self.config.candidates)):
                fused[row] = fused.get(row, 0.0) + weight / (self.config.rrf_k + position + 1)
        return sorted(fused.items(), key=lambda item: -item[1])[:n]


RETRIEVERS: dict[str, type[Retriever]] = {"bm25": Bm25Retriever, "dense": DenseRetriever, "hybrid": HybridRetriever}


def _index_of(kb) -> KbIndex:
    """A KB artifact (anything with `.path`), a KB folder, or an already loaded index."""
    if isinstance(kb, KbIndex):
        return kb
    return load_index(Path(getattr(kb, "path", kb)))


def search(kb, query: str, k: int = 5, mode: str = "hybrid", check_support: bool = True,
           threshold: float | None = None, encoder: str | None = None) -> list[Hit]:
    """The best `k` chunks of a KB for `query`, documents in force first, each judged `supported` or not
    (against the KB's calibrated threshold unless `threshold` is given). `encoder`: the question
    embedding's engine (kb/embed.py QUERY_ENCODERS; default: WATT_KB_QUERY_ENCODER or torch-bf16)."""
    if mode not in RETRIEVERS:
        raise WattError(f"unknown retrieval mode {mode!r} (one of: {', '.join(RETRIEVERS)})")
    if not query.strip():
        raise WattError("empty query")
    index = _index_of(kb)
    if not index.chunks:
        raise WattError(f"knowledge base {index.meta.get('name', '?')} is empty: nothing to search")
    config = KbConfig.of_kb(index.meta.get("config", {}))
    retriever = RETRIEVERS[mode](config)
    vector = embed_query(query, encoder) if retriever.needs_vector or check_support else None
    # Ask for more than k: the validity preference may reorder the list.
    ranked = retriever.rank(index, query, vector, max(k * 3, k + 10))
    penalised = [(row, score * (config.superseded_penalty if index.chunks[row].superseded_by else 1.0))
                 for row, score in ranked]
    penalised.sort(key=lambda item: -item[1])
    if threshold is None:
        threshold = float(index.meta.get("threshold", {}).get("value", float("inf")))
    query_words = {word for word in tokenize(query) if len(word) >= 2}
    hits = []
    for rank, (row, score) in enumerate(penalised[:k], start=1):
        chunk = index.chunks[row]
        similarity = float(index.vectors[row] @ vector) if vector is not None else 0.0
        support = support_score(query_words, index.terms(row), similarity) if check_support else 0.0
        hits.append(Hit(rank=rank, id=chunk.id, source=chunk.source, title=chunk.title, heading=chunk.heading,
                        text=chunk.text, start=chunk.start, end=chunk.end, score=round(score, 6),
                        similarity=round(similarity, 4), support=round(support, 4),
                        supported=check_support and support >= threshold,
                        superseded=bool(chunk.superseded_by), superseded_by=chunk.superseded_by,
                        effective=chunk.effective))
    return hits
