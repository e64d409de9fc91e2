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
from collections import Counter
from collections.abc import Hashable, Sequence
from itertools import accumulate

from pydantic import Field

from wattlm.data.base import Filter, StepParams
from wattlm.data.document import Document

_WORD = re.compile(r"\w+")
_PARAGRAPHS = re.compile(r"\n\s*\n")

# Gopher's limits (table A1). Keys are word n; for Chinese the window is 2n characters.
GOPHER_TOP_NGRAM = {2: 0.20, 3: 0.18, 4: 0.16}
GOPHER_DUP_NGRAM = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}


def tokens(text: str, lang: str) -> tuple[Sequence[str], int]:
    """(tokens, n-gram scale): words for English and others, characters (no punctuation) for Chinese.

    Chinese tokens come back as one string (a sequence of 1-character tokens): its n-grams are string
    slices, several times cheaper to make and hash than tuples of characters.
    """
    if lang == "zh":
        chars = "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch)[0] not in "PZ")
        return chars, 2
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


def _ngrams(toks: Sequence[str], n: int) -> list[Hashable]:
    if isinstance(toks, str):
        return [toks[i : i + n] for i in range(len(toks) - n + 1)]
    return list(zip(*(toks[k:] for k in range(n)), strict=False))  # tuples built in C


def _char_offsets(toks: Sequence[str]) -> Sequence[int]:
    """offsets[i] = characters in toks[:i] (len(toks) + 1 entries)."""
    if isinstance(toks, str):
        return range(len(toks) + 1)
    return [0, *accumulate(map(len, toks))]


def top_ngram_fraction(toks: Sequence[str], n: int) -> float:
    """Characters covered by the most frequent n-gram (all its occurrences) / characters of all tokens."""
    if len(toks) < n:
        return 0.0
    gram, count = Counter(_ngrams(toks, n)).most_common(1)[0]
    if count < 2:
        return 0.0
    return count * sum(len(t) for t in gram) / _char_offsets(toks)[-1]


def duplicate_ngram_fraction(toks: Sequence[str], n: int) -> float:
    """Characters of tokens inside any n-gram that occurs more than once / characters of all tokens."""
    if len(toks) < n:
        return 0.0
    grams = _ngrams(toks, n)
    counts = Counter(grams)
    offsets = _char_offsets(toks)
    # The union of the windows [start, start + n) of repeated n-grams, swept left to right.
    covered = covered_to = 0
    for start in [i for i, gram in enumerate(grams) if counts[gram] > 1]:
        low = max(start, covered_to)
        covered_to = start + n
        covered += offsets[covered_to] - offsets[low]
    return covered / offsets[-1] if offsets[-1] else 0.0


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

    def keep(self, doc: Document) -> bool:
        toks, n_scale = tokens(doc.text, doc.meta.get("lang", "other"))
        for n, limit in GOPHER_TOP_NGRAM.items():
            if top_ngram_fraction(toks, n * n_scale) > limit * self.params.scale:
                return False
        for n, limit in GOPHER_DUP_NGRAM.items():
            if duplicate_ngram_fraction(toks, n * n_scale) > limit * self.params.scale:
                return False
        return True
