"""Text utilities several stages share: telling Chinese from other text, answer scoring units and
character F1, Markdown front matter, and the seeded hash split.

Scoring follows CMRC 2018's evaluation: Chinese has no spaces, so word-level F1 would treat a whole
answer as one token. Text is split into units where each CJK character is one unit and each run of
Latin letters or digits is one unit; F1 and ROUGE-L are computed over those units, in points (0-100).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

# Hanzi: the basic block, extension A and the supplementary-plane extensions (B and later, compatibility).
_HAN_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2FA1F))
_HAN = re.compile("[" + "".join(f"{chr(low)}-{chr(high)}" for low, high in _HAN_RANGES) + "]")
# Front matter is YAML between two '---' lines at the very top (Jekyll/Hugo convention; Hugo also ends it with '...').
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n.*?\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)
# Scoring: CJK ideographs (basic, extension A, compatibility), kana and hangul count one unit per character.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
_UNIT = re.compile(f"[{_CJK}]|(?:(?![{_CJK}])[^\\W_])+")
_ARTICLES = {"a", "an", "the"}


def is_han(ch: str) -> bool:
    """Whether one character is a hanzi."""
    code = ord(ch)
    return any(low <= code <= high for low, high in _HAN_RANGES)


def is_chinese(text: str) -> bool:
    """Whether `text` holds any hanzi (a question's script decides the wording of its prompt)."""
    return _HAN.search(text) is not None


def strip_front_matter(text: str) -> str:
    """Markdown without its YAML front matter (metadata, not prose)."""
    return _FRONT_MATTER.sub("", text, count=1)


def split_score(key: str, seed: int) -> float:
    """A uniform number in [0, 1) fixed by (seed, key): the one hash split.

    A hash rather than a shuffle: an item's side depends on nothing but its own key, so adding items
    never moves an existing one between train and held-out (which would leak evaluation text into
    training on the next run)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


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
    return _f1(sum((Counter(pred) & Counter(gold)).values()), len(pred), len(gold))


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
    return _f1(lcs_length(pred, gold), len(pred), len(gold))


def _f1(matched: int, n_pred: int, n_gold: int) -> float:
    """Harmonic mean of precision (matched / n_pred) and recall (matched / n_gold), in points."""
    if matched == 0:
        return 0.0
    precision, recall = matched / n_pred, matched / n_gold
    return 100.0 * 2 * precision * recall / (precision + recall)
