"""Gopher-style repetition filters, made Chinese-aware.

Rae et al. 2021 ("Scaling Language Models: Methods, Analysis & Insights from Training Gopher",
appendix A.1.1, table A1) drop a document when repeated content passes these shares:
duplicate lines > 30 % of lines or > 20 % of characters; duplicate paragraphs > 30 % / > 20 %;
the most frequent 2/3/4-gram covers > 20 % / 18 % / 16 % of characters; characters inside duplicated
5..10-grams > 15 %, 14 %, 13 %, 12 %, 11 %, 10 %. Repetitive text (spam, generated listings, broken
extraction that repeats a block) is what those shares catch.

Gopher counts *word* n-grams. Chinese has no spaces, so for Chinese we count *character* n-grams with
n doubled (a Chinese word is about two characters; this keeps the window over the same amount of
language). With that window Gopher's limits carry over: every genuine document of examples/power-grid
(Chinese and English, including tables and FAQ records) stays below 75 % of each limit.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from wattlm.data.base import Filter, StepParams
from wattlm.data.char_tables import classes, code_points, table
from wattlm.data.document import Document

_WORD = re.compile(r"\w+")
_PARAGRAPHS = re.compile(r"\n\s*\n")

# Gopher's limits (table A1). Keys are word n; for Chinese the window is 2n characters.
GOPHER_TOP_NGRAM = {2: 0.20, 3: 0.18, 4: 0.16}
GOPHER_DUP_NGRAM = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}


def _is_gap(ch: str) -> bool:
    """Whitespace, punctuation and separators: not tokens of Chinese text."""
    return ch.isspace() or unicodedata.category(ch)[0] in "PZ"


def han_codes(text: str) -> Any:
    """The code points of the Chinese tokens of `text` (uint32): every character but the gaps, found by a
    table look-up per character (char_tables.py)."""
    codes = code_points(text)
    return codes[classes(codes, _is_gap) == 0]


def tokens(text: str, lang: str) -> tuple[Sequence[str], int]:
    """(tokens, n-gram scale): words for English and others, characters (no punctuation) for Chinese.

    Chinese tokens come back as one string (a sequence of 1-character tokens)."""
    if lang == "zh":
        return han_codes(text).tobytes().decode("utf-32-le", "surrogatepass"), 2
    return _WORD.findall(text.casefold()), 1


def duplicate_fractions(units: list[str]) -> tuple[float, float]:
    """(share of units that repeat an earlier unit, share of characters in those repeats)."""
    units = [unit.strip() for unit in units if unit.strip()]
    if not units:
        return 0.0, 0.0
    seen: set[str] = set()
    dup_units = dup_chars = 0
    for unit in units:
        if unit in seen:
            dup_units += 1
            dup_chars += len(unit)
        seen.add(unit)
    return dup_units / len(units), dup_chars / sum(len(unit) for unit in units)


def dense_ranks(keys: Any) -> Any:
    """0, 1, 2, ... by value, equal keys equal ranks (uint64): `np.unique(keys, return_inverse=True)[1]`
    without its generality, whose overhead counts at a dozen calls per document (the filter takes 15 %
    less time with this)."""
    import numpy as np

    order = np.argsort(keys)
    ordered = keys[order]
    starts = np.empty(len(keys), dtype=np.uint64)
    if len(keys):
        starts[0] = 0
        np.not_equal(ordered[1:], ordered[:-1], out=starts[1:], casting="unsafe")
    ranks = np.empty(len(keys), dtype=np.uint64)
    ranks[order] = np.cumsum(starts, dtype=np.uint64)
    return ranks


class NGrams:
    """Exact n-gram identities of one token sequence, in numpy.

    Every n-gram gets a rank (equal ranks = equal n-grams, no hashing, so no collisions): the ranks of
    n = a + b come from the pairs (rank of the a-gram at i, rank of the b-gram at i + a) through one sort
    (`dense_ranks`), with a a power of two, so the 3 + 6 n-gram lengths of the Gopher filters take about
    ten sorts of the document instead of nine Counters of string slices or tuples."""

    def __init__(self, toks: Sequence[str] | Any) -> None:
        """`toks`: words, or a string of 1-character tokens, or those characters' code points (`han_codes`)."""
        import numpy as np

        if isinstance(toks, (str, np.ndarray)):
            codes = code_points(toks) if isinstance(toks, str) else toks  # lone surrogates too
            self.lengths = None  # every token is one character
        else:
            index: dict[str, int] = {}
            codes = np.fromiter((index.setdefault(tok, len(index)) for tok in toks), dtype=np.int64, count=len(toks))
            self.lengths = np.fromiter(map(len, toks), dtype=np.int64, count=len(toks))
        self.size = len(toks)
        self.total_chars = self.size if self.lengths is None else int(self.lengths.sum())
        self._ranks: dict[int, Any] = {}
        self._repeats: dict[int, tuple[Any, Any]] = {}  # see _repeating
        if self.size:
            self._ranks[1] = dense_ranks(codes)

    def ranks(self, n: int) -> Any:
        """Rank of the n-gram starting at each position (size - n + 1 of them; needs size >= n)."""
        import numpy as np

        if n not in self._ranks:
            head = 1 << (n.bit_length() - 1)  # the largest power of two <= n
            if head == n:
                head //= 2
            left, right = self.ranks(head), self.ranks(n - head)
            count = self.size - n + 1
            keys = left[:count] * np.uint64(int(right.max()) + 1) + right[head : head + count]
            self._ranks[n] = dense_ranks(keys)
        return self._ranks[n]

    def chars(self, start: int, n: int) -> int:
        """Characters of the n tokens from `start`."""
        return n if self.lengths is None else int(self.lengths[start : start + n].sum())

    def top_fraction(self, n: int) -> float:
        """Characters covered by the most frequent n-gram (all its occurrences) / characters of all tokens.

        Ties go to the n-gram seen first, as `Counter.most_common` breaks them."""
        import numpy as np

        if self.size < n:
            return 0.0
        ranks = self.ranks(n)
        counts = np.bincount(ranks.astype(np.int64))
        count = int(counts.max())
        if count < 2:
            return 0.0
        first = int(np.argmax(counts[ranks.astype(np.int64)] == count))
        return count * self.chars(first, n) / self.total_chars

    def _repeating(self, n: int) -> tuple[Any, Any]:
        """(positions whose n-gram occurs more than once, ascending; those n-grams' ranks, comparable
        among these positions only).

        From the longest shorter n already done, when there is one: an n-gram can only repeat where its
        prefix repeats, and every occurrence of a repeating n-gram is such a position, so ranking the
        pairs (prefix rank, rank of the rest) over those positions alone finds exactly the repeats. A
        document with few repeated passages then sorts a handful of positions, not all of them."""
        import numpy as np

        if n not in self._repeats:
            shorter = [m for m in self._repeats if m < n]
            ranked = [m for m in self._ranks if 1 < m < n]
            if not shorter and ranked:
                # Seeded from a shorter n already ranked (the top n-gram filters ranked them): its repeating
                # positions need no sort, and the sort below then covers only those.
                m = max(ranked)
                seed_ranks = self._ranks[m]
                repeat = np.bincount(seed_ranks.astype(np.int64))[seed_ranks.astype(np.int64)] > 1
                self._repeats[m] = (np.flatnonzero(repeat), seed_ranks[repeat])
                shorter = [m]
            if shorter:
                m = max(shorter)
                positions, prefix_ranks = self._repeats[m]
                fits = positions <= self.size - n
                positions, prefix_ranks = positions[fits], prefix_ranks[fits]
                rest = self.ranks(n - m)
                keys = prefix_ranks * np.uint64(int(rest.max()) + 1) + rest[positions + m]
            else:
                positions = np.arange(self.size - n + 1)
                keys = self.ranks(n)
            ranks = dense_ranks(keys)
            repeat = np.bincount(ranks.astype(np.int64))[ranks.astype(np.int64)] > 1
            self._repeats[n] = (positions[repeat], ranks[repeat])
        return self._repeats[n]

    def duplicate_fraction(self, n: int) -> float:
        """Characters of tokens inside any n-gram that occurs more than once / characters of all tokens."""
        import numpy as np

        if self.size < n:
            return 0.0
        starts, _ = self._repeating(n)
        # The union of the windows [start, start + n): +1 where one opens, -1 where it closes.
        edges = np.zeros(self.size + 1, dtype=np.int64)
        edges[starts] += 1
        edges[starts + n] -= 1
        covered = np.cumsum(edges[: self.size]) > 0
        chars = int(covered.sum()) if self.lengths is None else int(self.lengths[covered].sum())
        return chars / self.total_chars if self.total_chars else 0.0


def top_ngram_fraction(toks: Sequence[str], n: int) -> float:
    """Characters covered by the most frequent n-gram (all its occurrences) / characters of all tokens."""
    return NGrams(toks).top_fraction(n)


def duplicate_ngram_fraction(toks: Sequence[str], n: int) -> float:
    """Characters of tokens inside any n-gram that occurs more than once / characters of all tokens."""
    return NGrams(toks).duplicate_fraction(n)


class RepeatedLinesParams(StepParams):
    max_share: float = Field(
        0.3, ge=0.0, le=1.0, description="Maximum share of repeated lines or paragraphs (Gopher 0.3)."
    )
    max_char_share: float = Field(
        0.2, ge=0.0, le=1.0, description="Maximum share of characters in repeated lines/paragraphs (Gopher 0.2)."
    )


class RepeatedLinesFilter(Filter):
    """Gopher: drop when duplicate lines (or paragraphs) pass `max_share` of units or `max_char_share`
    of characters (30 % and 20 % in Gopher)."""

    name = "filter_repeated_lines"
    drop_reason = "repeated_lines"
    Params = RepeatedLinesParams

    def keep(self, doc: Document) -> bool:
        for units in (doc.text.split("\n"), _PARAGRAPHS.split(doc.text)):
            share, char_share = duplicate_fractions(units)
            if share > self.params.max_share or char_share > self.params.max_char_share:
                return False
        return True


class RepeatedNgramsParams(StepParams):
    scale: float = Field(1.0, gt=0.0, description="Multiplier on Gopher's n-gram repetition limits; 1.0 = Gopher.")


class RepeatedNgramsFilter(Filter):
    """Gopher's top-n-gram and duplicated-n-gram limits, each multiplied by `scale` (1.0 = Gopher)."""

    name = "filter_repeated_ngrams"
    drop_reason = "repeated_ngrams"
    Params = RepeatedNgramsParams

    @classmethod
    def preload(cls) -> None:
        table(_is_gap)

    def keep(self, doc: Document) -> bool:
        lang = doc.meta.get("lang", "other")
        if lang == "zh":  # the code points straight into NGrams: what `tokens` gives, without the string
            grams, n_scale = NGrams(han_codes(doc.text)), 2
        else:
            toks, n_scale = tokens(doc.text, lang)
            grams = NGrams(toks)
        for n, limit in GOPHER_TOP_NGRAM.items():
            if grams.top_fraction(n * n_scale) > limit * self.params.scale:
                return False
        # Ascending n. Every token inside a repeated n-gram is inside a repeated shorter one too (its
        # sub-grams repeat where it does), so a fraction is an upper bound of every later one: a limit
        # at or above the last fraction computed passes without computing its own (same decision, and
        # a genuine document, with few repeats, is done after the first).
        bound = None
        for n, limit in GOPHER_DUP_NGRAM.items():
            if bound is not None and bound <= limit * self.params.scale:
                continue
            bound = grams.duplicate_fraction(n * n_scale)
            if bound > limit * self.params.scale:
                return False
        return True
