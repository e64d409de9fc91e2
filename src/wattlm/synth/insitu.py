"""Chinese questions made in place: the answer's clause with the answer replaced by a question word.

Mandarin is a wh-in-situ language: a question keeps the word order of its statement and puts the
question word where the answer would stand (额定频率为50Hz -> 额定频率为多少？; 巡视人员每季度检查一次 ->
巡视人员多久检查一次？). So for a span that is a quantity, a frequency or a term, replacing it with the
right question word gives a grammatical question whose answer is exactly that span, the way rule-based
question generation works (Heilman & Smith, 2010) without the movement rules English needs.

Small teachers fail most often at writing a question at all (Gemma 3 270M base: half of its lines are
statements). When `insitu_fallback` is on, an answer-first Chinese pair whose teacher question was
dropped gets the in-situ question instead; the example records `question_source: insitu` and the
stats count both sources. Clause-sized answers and English get no in-situ question.
"""

from __future__ import annotations

import re

from wattlm.shared.text import is_han

_CLAUSE_END = "，。；：！？,;:!?\n"
_BOUND = re.compile(r"^(不[小大低高]于|不超过|超过|低于|高于|至少|约)")
_TIME = re.compile(r"(?:分钟|小时|天|日|周|星期|个月|月|年|季度|秒|毫秒)(?:以[上下内]|左右)?$")
_NUMBER = re.compile(r"[0-9０-９一二两三四五六七八九十百千半]")
_DIGITS = re.compile(r"^[0-9０-９]")
_HAN_AMOUNT = re.compile(r"^[一二两三四五六七八九十百千半]+(?:个)?(?:分钟|小时|天|日|周|星期|月|年|季度|秒|倍|次)")
_DATE = re.compile(r"^[0-9０-９]+(月|日|号)$")
_YEAR = re.compile(r"^[0-9０-９]{4}年$")


def question_word(answer: str) -> tuple[str, str] | None:
    """(question word, the part of `answer` it replaces); None when no single word fits."""
    bound = _BOUND.match(answer)
    core = answer[bound.end():] if bound else answer
    if answer.startswith("每"):
        return "多久", answer
    if _YEAR.match(core):
        return "哪一年", core
    date = _DATE.match(core)
    if date:
        return "几" + date.group(1), core
    if _DIGITS.match(core) or _HAN_AMOUNT.match(core):
        return ("多长时间" if _TIME.search(core) else "多少"), core
    if len(core) <= 10 and not _NUMBER.match(core):  # a term; 三制 or 五防 are names, not amounts
        return "什么", core
    return None


def insitu_question(passage: str, answer: str) -> str | None:
    """The question whose answer is `answer`, made from the clause holding it; None if none can be made."""
    at = passage.find(answer)
    picked = question_word(answer)
    if at < 0 or picked is None:
        return None
    word, replaced = picked
    if at > 0 and passage[at - 1] in "（(":  # "站所终端（DTU）": a gloss, not something to ask about
        return None
    at += answer.find(replaced)
    start = max(passage.rfind(mark, 0, at) for mark in _CLAUSE_END) + 1
    ends = [e for e in (passage.find(mark, at + len(replaced)) for mark in _CLAUSE_END) if e >= 0]
    end = min(ends) if ends else len(passage)
    before, after = passage[start:at], passage[at + len(replaced):end]
    if sum(map(is_han, before + after)) < 5 and start > 0:
        # "…50Hz以内" alone says too little: take in the clause before it for context.
        prev = max(passage.rfind(mark, 0, start - 1) for mark in _CLAUSE_END) + 1
        before = passage[prev:start - 1] + "，" + before
    before = re.sub(r"^\s*(?:[0-9]+[.．、)]|[一二三四五六七八九十]+、)\s*", "", before).strip()
    question = f"{before}{word}{after.strip()}"
    # A question word first ("多少配网带电作业安全要点") comes from a heading or an attribute, not a statement
    # of fact; table rows are not sentences either.
    if sum(map(is_han, before)) < 2 or sum(map(is_han, before + after)) < 5 or "|" in question:
        return None
    return question.rstrip("。.，,") + "？"
