"""Scores for generated answers: exact match, character F1 and ROUGE-L, aware of Chinese text.

Chinese has no spaces, so word-level F1 would treat a whole answer as one token. Following CMRC 2018's
evaluation, text is split into units where each CJK character is one unit and each run of Latin letters
or digits is one unit; F1 and ROUGE-L are computed over those units. All scores are in points (0-100).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

# CJK ideographs (basic, extension A, compatibility), kana and hangul count one unit per character.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
_UNIT = re.compile(f"[{_CJK}]|(?:(?![{_CJK}])[^\\W_])+")
_ARTICLES = {"a", "an", "the"}


def normalize(text: str) -> str:
    """Case-folded, full-width folded (NFKC), punctuation removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(" " if unicodedata.category(ch).startswith(("P", "S")) else ch for ch in text)
    return " ".join(kept.split())


def units(text: str) -> list[str]:
    """Scoring units of normalised text: CJK characters one by one, other words whole (no English articles)."""
    return [u for u in _UNIT.findall(normalize(text)) if u not in _ARTICLES]


def exact_match(prediction: str, answer: str) -> float:
    return 100.0 if units(prediction) == units(answer) else 0.0


def char_f1(prediction: str, answer: str) -> float:
    """SQuAD-style F1 over units (characters for Chinese): overlap counted as a multiset."""
    pred, gold = units(prediction), units(answer)
    if not pred or not gold:
        return 100.0 if pred == gold else 0.0
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 100.0 * 2 * precision * recall / (precision + recall)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Longest common subsequence by dynamic programming over one row (O(len(a) x len(b)) time)."""
    if len(a) < len(b):
        a, b = b, a
    row = [0] * (len(b) + 1)
    for x in a:
        diagonal = 0
        for j, y in enumerate(b, 1):
            above = row[j]
            row[j] = diagonal + 1 if x == y else max(row[j], row[j - 1])
            diagonal = above
    return row[-1]


def rouge_l(prediction: str, answer: str) -> float:
    """ROUGE-L F1 (beta = 1): LCS of units over prediction length (precision) and answer length (recall)."""
    pred, gold = units(prediction), units(answer)
    if not pred or not gold:
        return 100.0 if pred == gold else 0.0
    lcs = lcs_length(pred, gold)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(gold)
    return 100.0 * 2 * precision * recall / (precision + recall)


SCORERS = {"exact_match": exact_match, "char_f1": char_f1, "rouge_l": rouge_l}


def score_answer(prediction: str, answers: Sequence[str]) -> dict[str, float]:
    """Each score against the best-matching reference (an item may list several accepted answers)."""
    return {name: max(fn(prediction, a) for a in answers) for name, fn in SCORERS.items()}
