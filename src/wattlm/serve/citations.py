"""Checking a generated answer against the passages it was given, and numbering its citations.

The task tier answers in the QA wording it was trained on (a short span, no citation syntax), so the
server decides what the answer cites: a passage is cited when it holds at least OVERLAP_THRESHOLD of
the answer's content units, and an answer that no passage reaches is replaced by the refusal, so an
answer the documents do not support never leaves the server. Markers the model did write (`[2]`) are
kept only if that passage passes the same check; all markers are renumbered 1..n in the order the
answer uses them.

Content units are those of the answer scores (`shared.text.units`: each hanzi alone, other words
whole), minus the function words BM25 ignores (的, 是, the, of ...): those occur in every passage and
would let an invented answer pass. Counting single hanzi is deliberately lenient: a short extractive
answer of a few characters still passes, while an answer about another subject (a recipe against a
power-grid passage) shares few of its characters. See docs/serving.md for the measured behaviour.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from wattlm.kb.tokens import STOPWORDS
from wattlm.shared.text import is_chinese, units

OVERLAP_THRESHOLD = 0.5  # share of the answer's content units found in a passage for it to count as a source
REFUSALS = {"zh": "资料中没有找到相关内容。", "en": "The documents do not contain this."}
_MARKER = re.compile(r"\[(\d{1,2})\]")


def refusal(question: str) -> str:
    """The refusal in the question's language (Chinese if it has hanzi, else English)."""
    return REFUSALS["zh" if is_chinese(question) else "en"]


def content_units(text: str) -> set[str]:
    return {unit for unit in units(text) if unit not in STOPWORDS}


def overlap(answer: str, passage: str) -> float:
    """The share of the answer's content units that occur in `passage` (0 for an answer with none)."""
    wanted = content_units(answer)
    if not wanted:
        return 0.0
    return len(wanted & content_units(passage)) / len(wanted)


@dataclass
class CheckedAnswer:
    text: str  # the answer with markers [1]..[n], or the refusal
    cited: list[int]  # 0-based indexes into the passages, in the order of markers 1..n
    refused: bool


def check_answer(answer: str, passages: Sequence[str], question: str) -> CheckedAnswer:
    """Keep the passages that support `answer`, renumber its markers, or refuse when none does."""
    bare = _MARKER.sub("", answer)
    supports = [index for index, passage in enumerate(passages) if overlap(bare, passage) >= OVERLAP_THRESHOLD]
    if not supports:
        return CheckedAnswer(refusal(question), [], True)
    # Passages the model marked itself come first, in the order it wrote them; then the others.
    marked = [int(found) - 1 for found in _MARKER.findall(answer)]
    cited = list(dict.fromkeys([index for index in marked if index in supports] + supports))
    number = {index: position for position, index in enumerate(cited, start=1)}

    def renumber(match: re.Match) -> str:
        index = int(match.group(1)) - 1
        return f"[{number[index]}]" if index in number else ""  # a marker of an unused passage goes

    text = re.sub(r"[ \t]{2,}", " ", _MARKER.sub(renumber, answer)).strip()
    unmarked = [index for index in cited if f"[{number[index]}]" not in text]
    joiner = "" if is_chinese(text) else " "
    if unmarked:
        text = text + joiner + "".join(f"[{number[index]}]" for index in unmarked)
    return CheckedAnswer(text, cited, False)
