"""Checking a generated answer against the passages it was given, and numbering its citations.

The task tier answers in the QA wording it was trained on (a short span, no citation syntax), so the
server decides what the answer cites, from the answer's *content units* (those of the answer scores,
`shared.text.units`: each hanzi alone, other words whole, minus the function words BM25 ignores: 的,
是, the, of ... occur in every passage and would let an invented answer pass; minus the question's own
units, so an answer that only repeats the question is refused):

- passages are taken greedily, those the model marked itself (`[2]`) first, then by their overlap with
  the answer; one is cited when it adds at least MIN_CONTRIBUTION of the answer's units that the
  passages cited before it do not hold (so a passage that only repeats another, say the superseded
  version of a rule, is not cited beside it, and one the answer does not use at all never is);
- the answer is supported when the cited passages together hold at least SUPPORT_THRESHOLD of its
  units; otherwise it becomes the refusal, so an answer the documents do not support never leaves;
- markers are renumbered 1..n (the model's own in the order it wrote them, then the others in rank
  order); a marker of a passage that is not cited is removed; cited passages the answer has no
  marker for get one at its end.

Counting single hanzi is deliberately lenient: a short extractive answer of a few characters passes,
while an answer about another subject (a recipe against a power-grid passage) shares few of its
characters. See docs/serving.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from wattlm.kb.tokens import STOPWORDS
from wattlm.shared.text import is_chinese, units

SUPPORT_THRESHOLD = 0.5  # share of the answer's content units the cited passages must hold
MIN_CONTRIBUTION = 0.2  # share of the answer's units a passage must add to be cited
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
    """Cite the passages `answer` draws on and renumber its markers, or refuse when they do not support it."""
    # Units the question already holds prove nothing: an answer that only repeats the question (what
    # small models do when lost) is refused, and the check weighs what the answer adds.
    wanted = content_units(_MARKER.sub("", answer)) - content_units(question)
    marked = [int(found) - 1 for found in _MARKER.findall(answer)]
    marked = list(dict.fromkeys(index for index in marked if 0 <= index < len(passages)))
    held = [content_units(passage) & wanted for passage in passages]
    by_overlap = sorted(range(len(passages)), key=lambda index: -len(held[index]))
    covered: set[str] = set()
    cited: list[int] = []
    for index in marked + [index for index in by_overlap if index not in marked]:
        if wanted and len(held[index] - covered) >= MIN_CONTRIBUTION * len(wanted):
            cited.append(index)
            covered |= held[index]
    if not wanted or len(covered) < SUPPORT_THRESHOLD * len(wanted):
        return CheckedAnswer(refusal(question), [], True)
    cited = [index for index in marked if index in cited] + sorted(index for index in cited if index not in marked)
    number = {index: position for position, index in enumerate(cited, start=1)}

    def renumber(match: re.Match) -> str:
        index = int(match.group(1)) - 1
        return f"[{number[index]}]" if index in number else ""  # a marker of a passage not cited goes

    text = re.sub(r"[ \t]{2,}", " ", _MARKER.sub(renumber, answer)).strip()
    unmarked = [index for index in cited if f"[{number[index]}]" not in text]
    if unmarked:
        joiner = "" if is_chinese(text) else " "
        text = text + joiner + "".join(f"[{number[index]}]" for index in unmarked)
    return CheckedAnswer(text, cited, False)
