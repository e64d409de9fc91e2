"""Text normalization: compatibility folding, traditional -> simplified, control characters, whitespace.

Why not plain NFKC: NFKC maps Chinese full-width punctuation to ASCII ('，' -> ',', '：' -> ':',
'（' -> '('), which damages Chinese text that uses full-width punctuation on purpose, and it flattens
'm²' to 'm2' and '①' to '1', which changes meaning in technical documents. So we apply NFC everywhere
(canonical only: safe) and NFKC to a short list of blocks where the compatibility form is only an
encoding accident: full-width ASCII letters and digits (typed with a Chinese IME), the ideographic
space, half-width katakana, Latin ligatures from PDFs, and Kangxi radicals / CJK compatibility
ideographs, which PDF text layers emit instead of the ordinary characters ('⼀' U+2F00 for '一').
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

from pydantic import Field

from wattlm.data.base import Step, StepParams
from wattlm.data.document import Document
from wattlm.data.transforms.repair import collapse_repeated_punctuation, repair_mojibake, strip_pinyin

# Code point ranges folded with NFKC (inclusive); everything else only gets NFC.
_NFKC_RANGES = (
    (0x3000, 0x3000),  # ideographic space -> ' '
    (0xFF10, 0xFF19),  # full-width digits
    (0xFF21, 0xFF3A),  # full-width A-Z
    (0xFF41, 0xFF5A),  # full-width a-z
    (0xFF65, 0xFFDC),  # half-width katakana and hangul
    (0xFB00, 0xFB06),  # Latin ligatures (ﬁ, ﬂ, ...)
    (0x2F00, 0x2FD5),  # Kangxi radicals
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
)
# Format characters that are invisible noise in a corpus: zero-width space/joiners, BOM, soft hyphen.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad"

_TAB_LIKE = re.compile(r"[\t\f\v]")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")  # category Cc minus \t \n \v \f \r (handled above)
_HORIZONTAL_SPACE = re.compile(r"[^\S\n]+")  # any whitespace except newline
_BLANK_LINES = re.compile(r"\n{3,}")
_LINE_EDGES = re.compile(r" ?\n ?")


@cache
def _fold_table() -> dict[int, str]:
    table: dict[int, str] = {ord(ch): "" for ch in _INVISIBLE}
    for first, last in _NFKC_RANGES:
        for code in range(first, last + 1):
            folded = unicodedata.normalize("NFKC", chr(code))
            if folded != chr(code):
                table[code] = folded
    return table


@cache
def _fold_chars() -> re.Pattern[str]:
    return re.compile("[" + "".join(re.escape(chr(code)) for code in sorted(_fold_table())) + "]")


def fold_compat(text: str) -> str:
    """NFC, then NFKC only for the ranges above; '，。：（）' and friends are left alone.

    A regex finds the few characters to fold (C speed); `str.translate` with the table looked every
    character up in a dict, ten times slower on text that has none of them, which is most text."""
    table = _fold_table()
    return _fold_chars().sub(lambda match: table[ord(match.group())], unicodedata.normalize("NFC", text))


def strip_controls(text: str) -> str:
    """Drop control characters; line breaks become '\\n' and tabs/form feeds become spaces."""
    # U+2028/2029 are line breaks too; left in, they would split a JSONL line for some readers.
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    return _CONTROL.sub("", _TAB_LIKE.sub(" ", text))


def collapse_whitespace(text: str) -> str:
    """One space for any run of spaces on a line; lines trimmed; at most one blank line between paragraphs.

    Single line breaks are kept: joining wrapped lines needs a space in English and none in Chinese,
    and guessing wrong corrupts text, while a stray newline costs a language model nothing.
    """
    # Over the whole text rather than line by line (same result: the runs never hold a newline, and once
    # they are single spaces, trimming a line is taking the space on either side of its newlines).
    text = _LINE_EDGES.sub("\n", _HORIZONTAL_SPACE.sub(" ", text))
    return _BLANK_LINES.sub("\n\n", text).strip()


@cache
def _t2s() -> Any:  # an opencc.OpenCC; typed loosely so opencc is not imported at module load
    # Imported lazily: OpenCC loads its dictionaries on construction (tens of milliseconds).
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional -> simplified Chinese (OpenCC t2s); other scripts pass through unchanged."""
    return _t2s().convert(text)


def normalize_text(text: str, simplify: bool = True, repair: bool = True) -> str:
    if repair:
        # Before strip_controls: mojibake of UTF-8 read as Latin-1 is full of C1 control characters
        # that are bytes of the original text, and removing them first would make it unrepairable.
        text = repair_mojibake(text)
    text = fold_compat(strip_controls(text))
    if simplify:
        text = to_simplified(text)
    if repair:
        text = collapse_repeated_punctuation(strip_pinyin(text))
    return collapse_whitespace(text)


class NormalizeParams(StepParams):
    simplify: bool = Field(True, description="Convert traditional Chinese to simplified with OpenCC (t2s).")
    repair: bool = Field(
        True, description="Undo UTF-8-read-as-Latin-1 mojibake, strip pinyin glued to hanzi (发(fā) -> 发) and "
        "collapse repeated sentence marks (！！！ -> ！; …… is kept)."
    )


class Normalizer(Step):
    """Applies `normalize_text` to every document; never drops (empty results are the filters' job)."""

    name = "normalize"
    phase = "read"
    Params = NormalizeParams
    requires = ("opencc",)

    @classmethod
    def preload(cls) -> None:
        _t2s()

    def required_packages(self) -> tuple[str, ...]:
        return self.requires if self.params.simplify else ()

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        for doc in docs:
            doc.text = normalize_text(doc.text, self.params.simplify, self.params.repair)
            yield doc
