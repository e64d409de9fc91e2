"""Chinese-aware heuristic quality filters: character-class ratios and line-end punctuation.

Each filter is one number with one limit, so a dropped document can be explained. The limits are
the filters' params; their defaults keep every genuine document of examples/power-grid (Markdown tables
of defect records and checklists included) and drop pages of codes, menus and number dumps.
"""

from __future__ import annotations

from pydantic import Field

from wattlm.data.base import Filter, StepParams
from wattlm.data.char_tables import class_counts, table
from wattlm.data.document import Document
from wattlm.shared.text import is_han

# Markup and decoration that prose rarely needs; units and maths (℃, ≥, ±, μ) are *not* here: a
# technical document is full of them.
JUNK_SYMBOLS = frozenset("#|*~=_^\\{}[]<>@$&`…•●■□◆◇★☆►▶→")
# What a line of prose ends with, in Chinese and English (closing quotes and brackets after a stop too).
END_PUNCTUATION = frozenset("。！？；：…!?;:.\"'”’」』）)")


VISIBLE, SCRIPT, SYMBOL, DIGIT = 1, 2, 4, 8


def _char_bits(ch: str) -> int:
    """VISIBLE | SCRIPT (hanzi or letter) | SYMBOL (junk symbol) | DIGIT bits of one character."""
    return ((not ch.isspace()) * VISIBLE | (is_han(ch) or ch.isalpha()) * SCRIPT | (ch in JUNK_SYMBOLS) * SYMBOL
            | ch.isdigit() * DIGIT)


_last_counts: tuple[str, tuple[int, int, int, int]] | None = None


def char_counts(text: str) -> tuple[int, int, int, int]:
    """(visible, script, symbol, digit) character counts of `text`.

    One table look-up per character in numpy (char_tables.py) and a count per combination of the four
    bits, instead of a Python loop per character in each of the three ratio filters; the last text's
    counts are kept, so the filters that run one after the other on the same document share one count
    (compared by identity: `text` is held here, so its id cannot be reused by another string)."""
    global _last_counts
    if _last_counts is not None and _last_counts[0] is text:
        return _last_counts[1]
    per_bits = class_counts(text, _char_bits, 16)  # characters per combination of the four bits

    def visible_with(kind: int) -> int:
        return sum(n for bits, n in enumerate(per_bits) if bits & VISIBLE and bits & kind)

    counts = (visible_with(VISIBLE), visible_with(SCRIPT), visible_with(SYMBOL), visible_with(DIGIT))
    _last_counts = (text, counts)
    return counts


def script_ratio(text: str) -> float:
    """Share of visible characters that are hanzi or letters (any script)."""
    visible, script, _, _ = char_counts(text)
    return script / visible if visible else 0.0


def symbol_ratio(text: str) -> float:
    visible, _, symbol, _ = char_counts(text)
    return symbol / visible if visible else 0.0


def digit_ratio(text: str) -> float:
    visible, _, _, digit = char_counts(text)
    return digit / visible if visible else 0.0


def end_punctuation_share(text: str) -> float:
    """Share of non-blank lines that end like a sentence (C4 / FineWeb's line-punctuation rule)."""
    lines = [line.rstrip() for line in text.split("\n") if line.strip()]
    return sum(line[-1] in END_PUNCTUATION for line in lines) / len(lines) if lines else 0.0


class ScriptRatioFilterParams(StepParams):
    min_ratio: float = Field(0.5, ge=0.0, le=1.0, description="Minimum share of hanzi/letters among visible characters.")


class ScriptRatioFilter(Filter):
    """Too few hanzi/letters: tables of numbers, code, encoded junk (Gopher: < 80 % of words with a letter)."""

    name = "filter_script_ratio"
    drop_reason = "low_script_ratio"
    Params = ScriptRatioFilterParams

    @classmethod
    def preload(cls) -> None:
        table(_char_bits)  # shared by the three ratio filters

    def keep(self, doc: Document) -> bool:
        return script_ratio(doc.text) >= self.params.min_ratio


class SymbolRatioFilterParams(StepParams):
    max_ratio: float = Field(
        0.15, ge=0.0, le=1.0, description="Maximum share of markup symbols such as # | * … among visible characters."
    )


class SymbolRatioFilter(Filter):
    """Too much markup and decoration (Gopher: '#' and '...' per word > 0.1; '|' of Markdown tables counts
    here too, so the default leaves room for a table-heavy document)."""

    name = "filter_symbol_ratio"
    drop_reason = "too_many_symbols"
    Params = SymbolRatioFilterParams

    def keep(self, doc: Document) -> bool:
        return symbol_ratio(doc.text) <= self.params.max_ratio


class DigitRatioFilterParams(StepParams):
    max_ratio: float = Field(0.3, ge=0.0, le=1.0, description="Maximum share of digits among visible characters.")


class DigitRatioFilter(Filter):
    """Mostly digits: meter dumps, price lists, log tails."""

    name = "filter_digit_ratio"
    drop_reason = "too_many_digits"
    Params = DigitRatioFilterParams

    def keep(self, doc: Document) -> bool:
        return digit_ratio(doc.text) <= self.params.max_ratio


class EndPunctuationFilterParams(StepParams):
    min_share: float = Field(0.12, ge=0.0, le=1.0, description="Minimum share of non-blank lines ending like a sentence.")


class EndPunctuationFilter(Filter):
    """Too few lines that end like sentences: menus, tag clouds, lists of links."""

    name = "filter_end_punctuation"
    drop_reason = "few_sentence_lines"
    Params = EndPunctuationFilterParams

    def keep(self, doc: Document) -> bool:
        return end_punctuation_share(doc.text) >= self.params.min_share
