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
from wattlm.shared.refusal import REFUSALS, refusal  # noqa: F401 (importable here, as before)
from wattlm.shared.text import is_chinese, units

SUPPORT_THRESHOLD = 0.5  # share of the answer's content units the cited passages must hold
MIN_CONTRIBUTION = 0.2  # share of the answer's units a passage must add to be cited
_MARKER = re.compile(r"\[(\d{1,2})\]")


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
    extractive: bool = False  # the text is a clause of a passage (answer_shaping.py), not the model's words


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


# ---- answer shaping: what the server does with a checked answer -----------------------------------
# A 270M task model answers with a short span ("5分钟"), sometimes a span of the wrong sentence, or,
# when lost, debris that the check above refuses. Three measured steps (docs/kb.md, "Grounded answers";
# settings chosen on the demo's QA set, then measured once on the hold-out): a supported span is given
# back as the passage clause that holds it ("再次投入的间隔时间不得少于5分钟"), so the answer reads whole
# and names its condition; a span whose sentence matches the question much worse than another sentence
# does (RELOCATE_MARGIN) is taken as misplaced; and when the answer is refused or misplaced although a
# passage sentence holds at least FALLBACK_MIN_SHARE of the question's words, that sentence is the
# answer (extractive fallback), cited, flagged `extractive`. Otherwise the refusal stands.

CLAUSE_CHARS = 60  # a sentence longer than this is cut to the comma clause holding the span
FALLBACK_MIN_SHARE = 0.5  # share of the question's content units a sentence must hold to be the fallback
RELOCATE_MARGIN = 0.3  # a span whose sentence matches the question this much worse than the best one moves
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])|\n|(?<=\.)\s+")
_CLAUSE_END = re.compile(r"(?<=[，,：:])")


def _sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(text) if part and part.strip()]


def _cut(sentence: str, around: int) -> str:
    """`sentence` if short, else its comma clause holding character `around` plus the next clause."""
    if len(sentence) <= CLAUSE_CHARS:
        return sentence
    clauses = [c for c in _CLAUSE_END.split(sentence) if c]
    position = 0
    for index, clause in enumerate(clauses):
        if position <= around < position + len(clause):
            return "".join(clauses[index:index + 2]).strip()[:CLAUSE_CHARS * 2]
        position += len(clause)
    return sentence[:CLAUSE_CHARS]


def clause_of(span: str, body: str) -> str | None:
    """The clause of `body` that holds `span` word for word (None when it is not there or is all of it)."""
    span = span.strip().strip("。，；,.;")
    if len(span) < 2:
        return None
    for sentence in _sentences(body):
        at = sentence.find(span)
        if at >= 0:
            clause = _cut(sentence, at).rstrip("，,：:")
            return clause if len(clause) > len(span) else None
    return None


def best_sentence(question: str, bodies: Sequence[str]) -> tuple[str, float] | None:
    """The passage sentence holding the largest share of the question's content units, and that share."""
    wanted = content_units(question)
    if not wanted:
        return None
    best: tuple[str, float] | None = None
    for body in bodies:
        for sentence in _sentences(body):
            share = len(wanted & content_units(sentence)) / len(wanted)
            if best is None or share > best[1]:
                best = (sentence, share)
    return best


def _question_share(question: str, text: str) -> float:
    wanted = content_units(question)
    return len(wanted & content_units(text)) / len(wanted) if wanted else 0.0


def finish_answer(raw: str, question: str, passages: Sequence[tuple[str, str]], refuse_only: bool = False,
                  expand: bool = True, fallback: bool = True, relocate: bool = True) -> CheckedAnswer:
    """The answer the server sends: checked against the passages (`(label, body)` each), expanded to its
    clause, or replaced by the best-matching sentence when the model's own answer is refused (or, with
    `relocate`, when the sentence holding its span matches the question much worse than that one)."""
    if refuse_only or not passages:
        return CheckedAnswer(refusal(question), [], True)
    texts = [f"{label}\n{body}" for label, body in passages]
    checked = check_answer(raw, texts, question)
    found = best_sentence(question, [body for _, body in passages]) if fallback else None
    if not checked.refused and expand:
        span = _MARKER.sub("", raw)
        for index in checked.cited:
            clause = clause_of(span, passages[index][1])
            if clause is not None:
                longer = check_answer(clause, texts, question)
                misplaced = relocate and found is not None and found[1] >= FALLBACK_MIN_SHARE and \
                    found[1] - _question_share(question, clause) >= RELOCATE_MARGIN
                if not longer.refused and not misplaced:
                    return longer
                if misplaced:
                    checked = CheckedAnswer(refusal(question), [], True)  # the span answers another question
                break
    if checked.refused and fallback:
        if found is not None and found[1] >= FALLBACK_MIN_SHARE:
            sentence = found[0]
            at = max(len(sentence) - 1, 0)  # a long sentence keeps its end, where the answer to a question usually is
            extracted = check_answer(_cut(sentence, at), texts, question)
            if not extracted.refused:
                extracted.extractive = True
                return extracted
    return checked
