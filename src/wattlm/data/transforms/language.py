"""Language id with py3langid (a naive Bayes model over byte n-grams, 142 labels), bucketed into the
three tags the corpus needs: zh, en and other.

py3langid labels Chinese by variety (zh, yue for Cantonese, wuu for Wu); a technical corpus written in
standard Chinese often gets 'yue' or 'wuu' for a short or traditional passage, so the whole family is
'zh'. Text with no letters at all (tables of numbers) is 'other' without asking the model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

from wattlm.data.base import Step
from wattlm.data.char_tables import class_counts, table
from wattlm.data.document import Document
from wattlm.shared.text import is_han

CHINESE_LABELS = frozenset({"zh", "yue", "wuu", "gan", "hak", "nan", "lzh", "cmn"})
# The model reads the opening of a document; beyond this, more text costs time and changes nothing.
MAX_CHARS = 2000
# Japanese is written with kanji too; without a single kana it is Chinese that the model misread.
_KANA = (0x3040, 0x30FF)


MIN_CONFIDENCE = 0.5
# Script fallback: a Chinese technical text is full of Latin acronyms and units (kV, GB/T, SCADA), so a
# minority of hanzi already means Chinese.
MIN_HAN_SHARE = 0.3
MIN_LATIN_SHARE = 0.9
# Shortcut: when the sample has no kana or hangul and at least this share of its letters are hanzi, the
# answer is 'zh' without the model (its byte n-gram scan is the stage's costliest Python loop); the share
# is the script fallback's own. On the bench's generated corpus (10,000 documents), examples/power-grid
# and the saved web pages the model says 'zh' for every such text (367 of them between 30 % and 35 %,
# 241 more between 25 % and 30 %), and no text it tags otherwise has more than 20.5 % hanzi among its
# letters (tests/data/test_speed_equivalence.py checks this against the model). It was 0.35 at first:
# the model then read 8 % of those texts, now 4 %.
CLEAR_HAN_SHARE = MIN_HAN_SHARE
_HAN, _LETTER, _KANA_HANGUL, _NOT_LETTER = range(4)
# Scripts written beside hanzi in Japanese and Korean (kana; hangul jamo, compatibility jamo, syllables).
_KANA_HANGUL_RANGES = ((0x3040, 0x30FF), (0x1100, 0x11FF), (0x3130, 0x318F), (0xAC00, 0xD7AF))


def script_lang(text: str) -> str:
    """'zh', 'en' or 'other' from the share of hanzi and ASCII letters among all letters."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return "other"
    if sum(map(is_han, letters)) / len(letters) >= MIN_HAN_SHARE:
        return "zh"
    return "en" if sum(ch.isascii() for ch in letters) / len(letters) >= MIN_LATIN_SHARE else "other"


def _letter_class(ch: str) -> int:
    if any(low <= ord(ch) <= high for low, high in _KANA_HANGUL_RANGES):
        return _KANA_HANGUL
    if not ch.isalpha():
        return _NOT_LETTER
    return _HAN if is_han(ch) else _LETTER


def clearly_chinese(sample: str) -> bool:
    """No kana or hangul, and at least CLEAR_HAN_SHARE of the letters hanzi (Japanese and Korean text, which
    mixes hanzi in, goes to the model)."""
    han, other_letters, kana_hangul, _ = class_counts(sample, _letter_class, 4)  # a table look-up per character
    letters = han + other_letters
    return not kana_hangul and letters > 0 and han >= CLEAR_HAN_SHARE * letters


@cache
def _identifier() -> Any:
    # Loaded once per process (about a second): the model is a 3 MB pickle.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_lang(text: str, shortcut: bool = True) -> str:
    """'zh', 'en' or 'other'; `shortcut=False` asks the model even for clearly Chinese text."""
    sample = text[:MAX_CHARS]
    if not any(ch.isalpha() for ch in sample):
        return "other"
    if shortcut and clearly_chinese(sample):
        return "zh"
    label, confidence = _identifier().classify(sample)
    if label not in CHINESE_LABELS and label != "en" and confidence < MIN_CONFIDENCE:
        # A short line gives the model little to go on ("Substation patrol rules apply." -> Nigerian
        # Pidgin, 0.39): below this confidence the script decides between zh, en and other.
        return script_lang(sample)
    if label in CHINESE_LABELS:
        return "zh"
    if label == "ja" and not any(_KANA[0] <= ord(ch) <= _KANA[1] for ch in sample):
        return "zh" if any(is_han(ch) for ch in sample) else "other"
    return "en" if label == "en" else "other"


class LanguageTagger(Step):
    """Sets `meta["lang"]`; `mix` counts documents per tag for the report."""

    name = "tag_language"
    phase = "clean"
    requires = ("py3langid",)

    @classmethod
    def preload(cls) -> None:
        _identifier()  # the model: 0.5 s a process
        table(_letter_class)

    def __init__(self) -> None:
        super().__init__()
        self.mix: Counter[str] = Counter()

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        for doc in docs:
            doc.meta["lang"] = detect_lang(doc.text)
            self.mix[doc.meta["lang"]] += 1
            yield doc

    def extra_state(self) -> dict[str, object]:
        return {"mix": dict(self.mix)}

    def merge_extra(self, extra: dict) -> None:
        self.mix.update(extra["mix"])
