"""Summaries of the kept corpus for the report: a length histogram and a few sample documents."""

from __future__ import annotations

from collections.abc import Sequence

from wattlm.data.base import SAMPLE_CHARS
from wattlm.data.document import Document

# Bin edges in characters: roughly doubling, so a 60-character stub and a 60,000-character manual both
# land in a bin that says something.
LENGTH_EDGES = (0, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000)


def length_histogram(lengths: Sequence[int]) -> list[dict[str, int]]:
    """[{min_chars, max_chars, docs}] over LENGTH_EDGES; the last bin is open (max_chars = -1)."""
    bins = [{"min_chars": lo, "max_chars": hi, "docs": 0} for lo, hi in zip(LENGTH_EDGES, LENGTH_EDGES[1:], strict=False)]
    bins.append({"min_chars": LENGTH_EDGES[-1], "max_chars": -1, "docs": 0})
    for length in lengths:
        index = sum(length >= edge for edge in LENGTH_EDGES[1:])
        bins[index]["docs"] += 1
    # Trailing empty bins say nothing; keep up to the longest document's bin.
    while len(bins) > 1 and bins[-1]["docs"] == 0:
        bins.pop()
    return bins


def kept_samples(docs: Sequence[Document], count: int = 3) -> list[dict[str, str]]:
    """`count` kept documents spread over the corpus (first, middle, last), truncated."""
    if not docs:
        return []
    picks = sorted({round(i * (len(docs) - 1) / max(count - 1, 1)) for i in range(count)})
    return [{"source": docs[i].source, "lang": docs[i].meta.get("lang", "other"), "text": docs[i].text[:SAMPLE_CHARS]}
            for i in picks]


def bin_index(value: float, edges: Sequence[float]) -> int:
    """Index of the bin [edges[i], edges[i+1]) holding `value`; values past either end go to the end bins."""
    return max(0, min(len(edges) - 2, sum(value >= edge for edge in edges[1:-1])))


def histogram_rows(counts: Sequence[int], edges: Sequence[float]) -> list[dict[str, float]]:
    """[{lo, hi, docs}] rows for the report, one per bin of `edges` (len(counts) == len(edges) - 1);
    an infinite last edge is written as hi = -1 (JSON has no infinity)."""
    return [{"lo": lo, "hi": hi if hi != float("inf") else -1, "docs": int(n)}
            for lo, hi, n in zip(edges, edges[1:], counts, strict=False)]
