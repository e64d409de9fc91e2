"""Near-duplicate removal with MinHash LSH (datasketch): one document per cluster of near-copies.

Exact dedup misses the copies that matter most in an industry corpus: a plan re-issued with a new
date, a notice reposted on another site with its own header, a revised log with one added sentence.
Each document becomes a set of shingles, MinHash sketches estimate the Jaccard similarity of two sets,
and LSH banding finds the candidate pairs without comparing every pair. A candidate counts as a
duplicate only if its estimated Jaccard is at least the threshold (LSH alone also returns some pairs
below it). The first document of a cluster in input order is kept, so reruns keep the same one.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from wattlm.data.base import Step, StepParams
from wattlm.data.document import Document

_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
EXAMPLE_CHARS = 160
SKETCH_KEY = "minhash"  # meta key of a precomputed sketch
MAX_REPORTED_CLUSTERS = 50


def _is_noise(ch: str) -> bool:
    """Whitespace, punctuation and symbols: layout, not content, for Chinese shingles."""
    return ch.isspace() or unicodedata.category(ch)[0] in "PSZ"


def shingles(text: str, lang: str, char_n: int = 5, word_n: int = 3) -> set[str]:
    """Character n-grams (Chinese, after dropping whitespace and punctuation) or word n-grams (English).

    Characters for Chinese because it has no spaces and a word segmenter would make the result depend
    on its dictionary; 5 characters are about two or three words, close to the English 3-word window.
    """
    text = text.casefold()
    if lang == "en":
        words = _WORD.findall(text)
        if len(words) < word_n:
            return {" ".join(words)} if words else set()
        return {" ".join(words[i : i + word_n]) for i in range(len(words) - word_n + 1)}
    chars = "".join(ch for ch in text if not _is_noise(ch))
    if len(chars) < char_n:
        return {chars} if chars else set()
    return {chars[i : i + char_n] for i in range(len(chars) - char_n + 1)}


@dataclass
class Cluster:
    """The kept document of a cluster and the near-copies dropped in its favour."""

    kept_id: str
    kept_source: str
    kept_example: str
    dropped: list[dict[str, object]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"kept_id": self.kept_id, "kept_source": self.kept_source, "kept_example": self.kept_example,
                "dropped": self.dropped}


class NearDedupParams(StepParams):
    threshold: float = Field(
        0.7, gt=0.0, lt=1.0, description="Estimated Jaccard similarity of shingle sets at which two documents are "
        "near-duplicates."
    )
    num_perm: int = Field(128, ge=16, description="MinHash permutations: more is slower and more precise.")
    char_n: int = Field(5, ge=1, description="Shingle length in characters for Chinese (and other non-English) text.")
    word_n: int = Field(3, ge=1, description="Shingle length in words for English text.")
    seed: int = Field(1, description="Seed of the MinHash permutations.")


class NearDedup(Step):
    """Drops documents whose estimated Jaccard with an earlier kept document is >= `threshold`."""

    name = "near_dedup"
    phase = "dedup"
    Params = NearDedupParams
    requires = ("datasketch",)

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        # Made on first use: building a MinHashLSH costs 50 ms (scipy integrates its band parameters),
        # and the shard workers' copies only compute sketches (`prepare`), never query an index.
        self._lsh: Any = None
        self._sketches: dict[str, Any] = {}  # kept document id -> its MinHash
        self._docs: dict[str, tuple[str, str]] = {}  # kept document id -> (source, example)
        self.clusters: dict[str, Cluster] = {}
        self._perms: Any = None

    def sketch(self, doc: Document) -> Any:
        """The document's MinHash; taken from `meta["minhash"]` when a worker computed it (see
        `attach_sketch`), so the serial dedup pass only queries the index."""
        import numpy as np
        from datasketch import MinHash

        encoded = doc.meta.pop(SKETCH_KEY, None)
        if encoded is not None:
            values = np.frombuffer(base64.b64decode(encoded), dtype=np.uint64)
            return MinHash(num_perm=self.params.num_perm, seed=self.params.seed, hashvalues=values, **self._template())
        sketch = MinHash(num_perm=self.params.num_perm, seed=self.params.seed, **self._template())
        grams = shingles(doc.text, doc.meta.get("lang", "zh"), self.params.char_n, self.params.word_n)
        sketch.update_batch([gram.encode("utf-8") for gram in grams])
        return sketch

    def prepare(self, doc: Document) -> None:
        self.attach_sketch(doc)

    def attach_sketch(self, doc: Document) -> None:
        """Store the sketch in the document (base64 of the uint64 hash values) for the dedup pass; run in
        the shard workers, where it costs no serial time."""
        values = self.sketch(doc).hashvalues
        doc.meta[SKETCH_KEY] = base64.b64encode(values.astype("<u8").tobytes()).decode("ascii")

    def _template(self) -> dict[str, Any]:
        # Made once: MinHash(seed=...) would redraw the same 2 x num_perm random numbers per document.
        # The scheme is the default one, named because datasketch requires it with given permutations.
        if self._perms is None:
            from datasketch import MinHash

            template = MinHash(num_perm=self.params.num_perm, seed=self.params.seed)
            self._perms = {"permutations": template.permutations, "scheme": template.scheme}
        return self._perms

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        if self._lsh is None:
            from datasketch import MinHashLSH

            self._lsh = MinHashLSH(threshold=self.params.threshold, num_perm=self.params.num_perm)
        for doc in docs:
            sketch = self.sketch(doc)
            best_id, best_sim = None, 0.0
            for candidate in self._lsh.query(sketch):
                similarity = sketch.jaccard(self._sketches[candidate])
                if similarity > best_sim:
                    best_id, best_sim = candidate, similarity
            if best_id is not None and best_sim >= self.params.threshold:
                self.drop("near_duplicate", doc)
                self._add_to_cluster(best_id, doc, best_sim)
                continue
            if doc.id not in self._sketches:  # ids are unique per source; guard against repeats anyway
                self._lsh.insert(doc.id, sketch)
                self._sketches[doc.id] = sketch
                self._docs[doc.id] = (doc.source, doc.text[:EXAMPLE_CHARS])
            yield doc

    def _add_to_cluster(self, kept_id: str, doc: Document, similarity: float) -> None:
        if kept_id not in self.clusters:
            source, example = self._docs[kept_id]
            self.clusters[kept_id] = Cluster(kept_id, source, example)
        self.clusters[kept_id].dropped.append(
            {"id": doc.id, "source": doc.source, "similarity": round(similarity, 3),
             "example": doc.text[:EXAMPLE_CHARS]}
        )

    def report_extras(self) -> dict[str, object]:
        # Largest clusters first; the report keeps a bounded number so report.json stays readable.
        ordered = sorted(self.clusters.values(), key=lambda c: (-len(c.dropped), c.kept_source))
        return {"near_dup_clusters": [cluster.to_dict() for cluster in ordered[:MAX_REPORTED_CLUSTERS]]}
