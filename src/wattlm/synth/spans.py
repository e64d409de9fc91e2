"""Answer spans for answer-first question generation, the few-shot QA mode for small base teachers.

A 270M base model asked to write a question *and* its answer mostly invents the answer (measured on
the power-grid corpus: 22 of 40 answers ungrounded, 13 missing, 1 pair kept). Given a span of the
passage as the answer, it only has to write a question that the span answers: the answer is grounded
by construction and the continuation is one short line.

Two sizes of span. Clauses (between punctuation marks) are easy to ask about but long. Phrases are what
reading-comprehension answers usually are (SQuAD's are mostly entities, numbers and short noun
phrases): a quantity with its unit ("50Hz", "每两小时"), a Latin term ("AGC"), a quoted term, or the
short object of a clause after a verb such as 为/由/采用 ("由AGC系统" -> "AGC系统"). A task model
trained on clause answers answers in clauses, so by default answers are phrases or short clauses only. Within each size, spans
with a number come first: they make questions with one clear answer.
"""

from __future__ import annotations

import random
import re
from typing import Literal

SpanSize = Literal["phrase", "clause"]

_ZH_CLAUSE = re.compile(r"[^，。；：！？、,;:!?\n]+")
_EN_CLAUSE = re.compile(r"(?:[^.;:!?\n]|(?<=\d)[.:](?=\d))+")  # 0.7 m and 10:30 stay whole
_LEADING_NUMBER = re.compile(r"^\s*(?:[0-9]+[.．、)]|[（(][0-9一二三四五六七八九十]+[)）]|[一二三四五六七八九十]+、)\s*")
_DIGIT = re.compile(r"[0-9０-９]")

_ZH_TIME = r"(?:个)?(?:千伏|伏|千瓦|兆瓦|瓦|安|米|毫米|厘米|公里|千米|毫秒|秒|分钟|小时|天|日|周|星期|个月|月|年|季度|倍)"
_ZH_BOUND = r"(?:每|不[小大低高]于|不超过|超过|低于|高于|约|至少)?"
_ZH_PHRASES = (
    # a quantity: optional qualifier, number, unit, optional bound ("不小于35kV", "十五分钟以上", "每两年").
    # Hanzi numerals only before units of measure: 二次调频, 一次设备 and 三级 are names, not amounts.
    re.compile(rf"{_ZH_BOUND}[0-9０-９]+(?:[.．][0-9]+)?\s*(?:[%％‰℃°Ω]|[A-Za-zμ]+(?:/[A-Za-z]+)?|{_ZH_TIME}|次|度|台|条|处|级|人)"
               r"(?:以[上下内]|左右)?"),
    re.compile(rf"(?<![0-9０-９]){_ZH_BOUND}[一二两三四五六七八九十百千半]+{_ZH_TIME}(?:以[上下内]|左右)?"),
    re.compile(r"每(?:年|月|周|天|日|季度|班|半年)"),
    re.compile(r"(?<![0-9A-Za-z.])[A-Za-z][A-Za-z0-9]*[A-Z0-9][A-Za-z0-9]*"),  # AGC, SF6, FLISR (not the kV of 35kV)
    re.compile(r"(?<=[“「《\"])[^”」》\"\n]{2,12}(?=[”」》\"])"),  # a quoted or titled term
)
# The object of a clause after a verb that introduces what the sentence is about.
# Single-character markers other than 为/由 are parts of words too often (用电, 是否, 备用).
_ZH_OBJECT = re.compile(r"(?:为|由|采用|使用|利用|称为|叫做|包括|分为|依靠|通过)([^，。；：！？、,;:!?“”\"\n]{2,10})$")

_EN_PHRASES = (
    re.compile(r"\b(?:every|once|twice|within|at least|up to|more than|less than|about)?\s*\b\d+(?:\.\d+)?\s*"
               r"(?:%|[a-zA-Zμ]+(?:/[a-zA-Z]+)?)?(?:\s+(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?))?"),
    re.compile(r"\b(?:every|once a|twice a|once every)\s+(?:\w+\s+)?(?:second|minute|hour|day|week|month|quarter|year)s?\b"),
    re.compile(r"\b[A-Z][A-Z0-9]+[a-z]?\b"),  # acronyms: SCADA, SF6, DTUs
)


# The longest clause that still counts as a short answer: characters (zh) or words (en).
SHORT_CLAUSE = {"zh": 14, "en": 6}


def candidate_spans(passage: str, lang: str) -> list[str]:
    """Clauses of `passage` of a size a question can be about, in passage order."""
    spans: list[str] = []
    if lang == "zh":
        for clause in _ZH_CLAUSE.findall(passage):
            clause = _LEADING_NUMBER.sub("", clause).strip()
            if 6 <= len(clause) <= 40:
                spans.append(clause)
    else:
        for sentence in _EN_CLAUSE.findall(passage):
            sentence = _LEADING_NUMBER.sub("", sentence).strip(" ,")
            if 3 <= len(sentence.split()) <= 25:
                spans.append(sentence)
    return list(dict.fromkeys(spans))  # first occurrence of each, in passage order


def phrase_spans(passage: str, lang: str) -> list[str]:
    """Short answer phrases of `passage` (quantities, terms, clause objects), in passage order."""
    found: list[tuple[int, str]] = []
    patterns = _ZH_PHRASES if lang == "zh" else _EN_PHRASES
    for pattern in patterns:
        for match in pattern.finditer(passage):
            text = match.group(0).strip()
            if (2 if lang == "zh" else 1) <= len(text) and len(text) <= 16 and not text.isdigit():
                found.append((match.start(), text))
    if lang == "zh":
        for clause in _ZH_CLAUSE.finditer(passage):
            obj = _ZH_OBJECT.search(clause.group(0))
            if obj:
                found.append((clause.start() + obj.start(1), obj.group(1).strip()))
    found.sort()
    return list(dict.fromkeys(text for _, text in found if text))


def answer_spans(passage: str, lang: str, n: int, seed: int, prefer: SpanSize = "phrase") -> list[str]:
    """Up to `n` distinct spans of `passage`; seeded, `prefer`red size first, facts with digits first."""
    rng = random.Random(seed)
    clauses = candidate_spans(passage, lang)
    if prefer == "phrase":  # short answers only: a long clause would teach the task model to answer at length
        clauses = [c for c in clauses if (len(c) if lang == "zh" else len(c.split())) <= SHORT_CLAUSE[lang]]
        groups = [phrase_spans(passage, lang), clauses]
    else:
        groups = [clauses, phrase_spans(passage, lang)]
    chosen: list[str] = []
    for group in groups:
        rng.shuffle(group)
        group.sort(key=lambda span: not _DIGIT.search(span))  # stable: shuffled order within each kind
        chosen.extend(span for span in group if span not in chosen)
    return chosen[:n]
