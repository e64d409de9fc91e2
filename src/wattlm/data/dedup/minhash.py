"""Near-duplicate removal with MinHash LSH (datasketch's scheme, in numpy): one document per cluster of near-copies.

Exact dedup misses the copies that matter most in an industry corpus: a plan re-issued with a new
date, a notice reposted on another site with its own header, a revised log with one added sentence.
Each document becomes a set of shingles, MinHash sketches estimate the Jaccard similarity of two sets,
and LSH banding finds the candidate pairs without comparing every pair. A candidate counts as a
duplicate only if its estimated Jaccard is at least the threshold (LSH alone also returns some pairs
below it). The first document of a cluster in input order is kept, so reruns keep the same one.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import Field

from wattlm.data.base import Step, StepParams
from wattlm.data.char_tables import classes, code_points, table
from wattlm.data.document import Document

_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
EXAMPLE_CHARS = 160
SKETCH_KEY = "minhash32"  # meta key of a precomputed sketch (renamed when its hash changed: an old .work is not mixed in)
SKETCH_ROWS = 2048  # shingles per block of the (shingles x permutations) matrix
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
    # str.translate with a table of this text's noise characters: C speed, one look-up per distinct character.
    chars = text.translate({ord(ch): None for ch in set(text) if _is_noise(ch)})
    if len(chars) < char_n:
        return {chars} if chars else set()
    return {chars[i : i + char_n] for i in range(len(chars) - char_n + 1)}


# Odd 64-bit multiplier of the polynomial shingle hash (the golden-ratio constant: any odd number would do).
_POLY = 0x9E3779B97F4A7C15


@lru_cache(maxsize=1 << 16)
def _word_hash(word: str) -> int:
    """A 64-bit hash of one word, the same in every process (Python's own str hash is salted per process)."""
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def _fmix64(values: Any) -> Any:
    """MurmurHash3's 64-bit finalizer on a uint64 array: every input bit flips about half the output bits."""
    import numpy as np

    values = values ^ (values >> np.uint64(33))
    values = values * np.uint64(0xFF51AFD7ED558CCD)
    values = values ^ (values >> np.uint64(33))
    values = values * np.uint64(0xC4CEB9FE1A85EC53)
    return values ^ (values >> np.uint64(33))


def shingle_hashes(text: str, lang: str, char_n: int = 5, word_n: int = 3) -> Any:
    """32-bit hashes of `shingles(text, lang, char_n, word_n)` (a uint32 array; a shingle may repeat, which
    a minimum does not mind), computed in numpy: a polynomial over the shingle's code points (Chinese) or
    word hashes (English), mod 2^64, then fmix64's top 32 bits. In place of a sha1 per shingle in Python,
    which was a quarter of the clean phase's time."""
    import numpy as np

    text = text.casefold()
    if lang == "en":
        units = np.array([_word_hash(word) for word in _WORD.findall(text)], dtype=np.uint64)
        n = word_n
    else:
        codes = code_points(text)  # the noise out by a table look-up per character (char_tables.py)
        units = codes[classes(codes, _is_noise) == 0].astype(np.uint64)
        n = char_n
    if len(units) == 0:
        return np.empty(0, dtype=np.uint32)
    n = min(n, len(units))  # a text shorter than one shingle is one shingle, as in `shingles`
    count = len(units) - n + 1
    hashes = units[:count].copy()
    for k in range(1, n):  # h = (...(u[i] * P + u[i+1]) * P + ...) + u[i+n-1], wrapping mod 2^64
        hashes = hashes * np.uint64(_POLY) + units[k : k + count]
    return (_fmix64(hashes) >> np.uint64(32)).astype(np.uint32)


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


def _fmix32(values: Any) -> Any:
    """MurmurHash3's 32-bit finalizer (datasketch's pre-mix of the "affine32" scheme), on a uint32 array."""
    import numpy as np

    values = values ^ (values >> np.uint32(16))
    values = values * np.uint32(0x85EBCA6B)
    values = values ^ (values >> np.uint32(13))
    values = values * np.uint32(0xC2B2AE35)
    return values ^ (values >> np.uint32(16))


def minhash_values(hashes: Any, permutations: Any) -> Any:
    """The MinHash of 32-bit shingle hashes as datasketch's `MinHash.update_batch` computes it with the
    default "affine32" scheme (fmix32 pre-mix, then h -> a * h + b mod 2^32 per permutation, the minimum
    of each), value for value, without a MinHash object: a uint32 array of num_perm values, all 2^32 - 1
    for no shingles."""
    import numpy as np

    a, b = permutations
    result = np.full(len(a), np.uint32(0xFFFFFFFF), dtype=np.uint32)
    mixed = _fmix32(np.asarray(hashes, dtype=np.uint32))[:, None]
    for start in range(0, len(mixed), SKETCH_ROWS):  # bounded memory for a huge document
        np.minimum(result, (mixed[start : start + SKETCH_ROWS] * a + b).min(axis=0), out=result)
    return result


def band_layout(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) minimising the false positive plus false negative probability mass, equally
    weighted, as datasketch's MinHashLSH chooses them (`_optimal_param`), with numpy's Simpson rule in
    place of scipy's quad (the same choice for thresholds 0.05-0.95 and 16-256 permutations, tested); the
    main process then needs neither datasketch nor scipy (0.36 s of imports, serial time)."""
    import numpy as np

    def integral(low: float, high: float, values: Any) -> float:
        step = (high - low) / (len(values) - 1)
        return float(step / 3 * (values[0] + values[-1] + 4 * values[1:-1:2].sum() + 2 * values[2:-1:2].sum()))

    below, above = np.linspace(0.0, threshold, 2001), np.linspace(threshold, 1.0, 2001)
    best, layout = float("inf"), (0, 0)
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            false_positive = integral(0.0, threshold, 1 - (1 - below**rows) ** bands)
            false_negative = integral(threshold, 1.0, (1 - above**rows) ** bands)
            error = 0.5 * false_positive + 0.5 * false_negative
            if error < best:
                best, layout = error, (bands, rows)
    if layout[0] < 2:  # as datasketch refuses it: one band is no locality-sensitive hashing
        raise ValueError(f"near_dedup: threshold {threshold} with num_perm {num_perm} leaves fewer than 2 LSH bands")
    return layout


class BandIndex:
    """The kept documents' sketches and LSH buckets: what datasketch's MinHashLSH holds, in a compact form.

    Buckets are one dict per band from the band's bytes to the index of the kept document with that band
    (a list of them once a second one shares it; datasketch compares the same bytes); sketches are rows
    of uint32 chunks (512 bytes a document at 128 permutations) instead of one MinHash object each."""

    CHUNK = 4096

    def __init__(self, bands: int, rows: int, num_perm: int) -> None:
        self.bands, self.rows, self.num_perm = bands, rows, num_perm
        self.buckets: list[dict[bytes, int | list[int]]] = [{} for _ in range(bands)]
        self._chunks: list[Any] = []
        self.size = 0

    def band_keys(self, values: Any) -> list[bytes]:
        raw, width = values.tobytes(), 4 * self.rows
        return [raw[band * width : (band + 1) * width] for band in range(self.bands)]

    def candidates(self, keys: list[bytes]) -> list[int]:
        """Indexes of kept documents sharing at least one band, in insertion order."""
        found: set[int] = set()
        for bucket, key in zip(self.buckets, keys, strict=True):
            held = bucket.get(key)
            if held is None:
                continue
            if isinstance(held, int):
                found.add(held)
            else:
                found.update(held)
        return sorted(found)

    def values(self, index: int) -> Any:
        return self._chunks[index // self.CHUNK][index % self.CHUNK]

    def add(self, values: Any, keys: list[bytes]) -> int:
        import numpy as np

        if self.size % self.CHUNK == 0:
            self._chunks.append(np.empty((self.CHUNK, self.num_perm), dtype=np.uint32))
        index = self.size
        self._chunks[-1][index % self.CHUNK] = values
        for bucket, key in zip(self.buckets, keys, strict=True):
            held = bucket.get(key)
            if held is None:
                bucket[key] = index  # most bands hold one document: an int, not a list, saves ~60 bytes each
            elif isinstance(held, int):
                bucket[key] = [held, index]
            else:
                held.append(index)
        self.size += 1
        return index


class NearDedup(Step):
    """Drops documents whose estimated Jaccard with an earlier kept document is >= `threshold`."""

    name = "near_dedup"
    phase = "dedup"
    Params = NearDedupParams

    @classmethod
    def preload(cls) -> None:
        table(_is_noise)  # for the sketches, computed in the workers

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        # Made on first use: the shard workers' copies only compute sketches.
        self._index: BandIndex | None = None
        self._kept: list[Document] = []  # index in the BandIndex -> the kept document (for cluster examples)
        self._kept_ids: set[str] = set()
        self.clusters: dict[str, Cluster] = {}
        self._perms: Any = None

    def permutations(self) -> Any:
        """(a, b) of datasketch's default "affine32" scheme for this seed and num_perm (its
        `MinHash._init_permutations`: a odd, b any uint32, from a RandomState of the seed), made once here
        so the workers need not import datasketch (and scipy with it); tests compare them with datasketch's."""
        import numpy as np

        if self._perms is None:
            draw = np.random.RandomState(self.params.seed)
            a = draw.randint(0, 1 << 31, self.params.num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
            b = draw.randint(0, 1 << 32, self.params.num_perm, dtype=np.uint32)
            self._perms = np.array([a, b])
        return self._perms

    def sketch(self, doc: Document) -> Any:
        """The document's MinHash values; taken from `meta["minhash"]` when a worker computed them (see
        `attach_sketch`), so the serial dedup pass only queries the index."""
        import numpy as np

        encoded = doc.meta.pop(SKETCH_KEY, None)
        if encoded is not None:
            raw = base64.b64decode(encoded)
            return np.frombuffer(raw, dtype="<u4")
        hashes = shingle_hashes(doc.text, doc.meta.get("lang", "zh"), self.params.char_n, self.params.word_n)
        return minhash_values(hashes, self.permutations())

    def prepare(self, doc: Document) -> None:
        self.attach_sketch(doc)

    def attach_sketch(self, doc: Document) -> None:
        """Store the sketch in the document (base64 of the uint32 values) for the dedup pass; run in the
        shard workers, where it costs no serial time."""
        doc.meta[SKETCH_KEY] = base64.b64encode(self.sketch(doc).astype("<u4").tobytes()).decode("ascii")

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        import numpy as np

        if self._index is None:
            bands, rows = band_layout(self.params.threshold, self.params.num_perm)
            self._index = BandIndex(bands, rows, self.params.num_perm)
        index = self._index
        for doc in docs:
            values = self.sketch(doc)
            keys = index.band_keys(values)
            best, best_sim = -1, 0.0
            for candidate in index.candidates(keys):
                # datasketch's MinHash.jaccard: the share of equal values
                similarity = float(np.count_nonzero(values == index.values(candidate))) / float(self.params.num_perm)
                if similarity > best_sim:  # ties go to the earliest kept document
                    best, best_sim = candidate, similarity
            if best >= 0 and best_sim >= self.params.threshold:
                self.drop("near_duplicate", doc)
                self._add_to_cluster(self._kept[best], doc, best_sim)
                continue
            if doc.id not in self._kept_ids:  # ids are unique per source; guard against repeats anyway
                index.add(values, keys)
                self._kept.append(doc)
                self._kept_ids.add(doc.id)
            yield doc

    def _add_to_cluster(self, kept: Document, doc: Document, similarity: float) -> None:
        # The kept document's text is as it was when it was kept: the steps after this one that change
        # text (paragraph_dedup) are barriers, which read every document before they change any.
        if kept.id not in self.clusters:
            self.clusters[kept.id] = Cluster(kept.id, kept.source, kept.text[:EXAMPLE_CHARS])
        self.clusters[kept.id].dropped.append(
            {"id": doc.id, "source": doc.source, "similarity": round(similarity, 3),
             "example": doc.text[:EXAMPLE_CHARS]}
        )

    def report_extras(self) -> dict[str, object]:
        # Largest clusters first; the report keeps a bounded number so report.json stays readable.
        ordered = sorted(self.clusters.values(), key=lambda c: (-len(c.dropped), c.kept_source))
        return {"near_dup_clusters": [cluster.to_dict() for cluster in ordered[:MAX_REPORTED_CLUSTERS]]}
