"""Turn a teacher's reply into items, or a snake_case reason why it could not be read.

Replies come as JSON (chat prompts ask for it; models still wrap it in ``` fences or chat around it) or
as labelled lines (few-shot prompts: "问题：…\n答案：…", "Question: … Answer: …", "- item: value").
Whatever the form, the result is a list of `Item`s; a reply that yields none gives the reason instead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    question: str | None  # None for summaries and extractions: the instruction is fixed
    answer: str


QUESTION_KEYS = ("question", "q", "问题", "instruction")
ANSWER_KEYS = ("answer", "a", "答案", "response", "output")
SUMMARY_KEYS = ("summary", "摘要", "answer")
FACT_KEYS = ("facts", "items", "要点", "key_facts")
LIST_KEYS = ("pairs", "qa", "items", "questions", "data")

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)
_QUESTION_LABEL = re.compile(r"^\s*(?:\d+[.、)]\s*)?(?:问题|问|question|q)\s*\d*\s*[:：]\s*", re.I)
_ANSWER_LABEL = re.compile(r"^\s*(?:\d+[.、)]\s*)?(?:答案|答|回答|answer|a)\s*\d*\s*[:：]\s*", re.I)
_SUMMARY_LABEL = re.compile(r"^\s*(?:摘要|概括|summary)\s*[:：]\s*", re.I)
_FACT_LINE = re.compile(r"^\s*(?:[-*•·]|\d+[.、)])\s*(.+)$")


class TooDeep(ValueError):
    """JSON nested past the recursion limit (`'[' * 5000`): no model writes that; unparseable."""


def _json_values(text: str) -> list[object]:
    """Every JSON object/array found in `text`: the whole text, fenced blocks, or embedded spans.
    Raises TooDeep rather than trying every later bracket of a deeply nested span (quadratic)."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    found: list[object] = []
    for candidate in candidates:
        candidate = candidate.strip()
        try:
            found.append(json.loads(candidate))
            return found
        except json.JSONDecodeError:
            pass
        except RecursionError:
            raise TooDeep from None
        for start, char in enumerate(candidate):
            if char in "{[":
                try:
                    value, _ = decoder.raw_decode(candidate, start)
                except json.JSONDecodeError:
                    continue
                except RecursionError:
                    raise TooDeep from None
                if isinstance(value, (dict, list)):
                    found.append(value)
                    return found
    return found


def _field(obj: dict, keys: tuple[str, ...]) -> str | None:
    lowered = {str(k).strip().lower(): v for k, v in obj.items()}
    for key in keys:
        value = lowered.get(key)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            text = str(value).strip()
            return text or None
    return None


def _json_items(value: object, task: str) -> tuple[list[Item], str | None]:
    if task == "extract":
        facts = value if isinstance(value, list) else None
        if isinstance(value, dict):
            facts = next((value[k] for k in value if str(k).lower() in FACT_KEYS and isinstance(value[k], list)), None)
        if not facts:
            return [], "missing_facts"
        lines = [_fact_text(f) for f in facts]
        lines = [line for line in lines if line]
        return ([Item(None, "\n".join(f"- {line}" for line in lines))], None) if lines else ([], "missing_facts")
    if task == "summary":
        summary = _field(value, SUMMARY_KEYS) if isinstance(value, dict) else None
        return ([Item(None, summary)], None) if summary else ([], "missing_summary")
    records = value
    if isinstance(value, dict):
        inner = next((value[k] for k in value if str(k).lower() in LIST_KEYS and isinstance(value[k], list)), None)
        records = inner if inner is not None else [value]
    if not isinstance(records, list):
        return [], "unparseable_reply"
    items, reason = [], None
    for record in records:
        if not isinstance(record, dict):
            reason = "unparseable_reply"
            continue
        question, answer = _field(record, QUESTION_KEYS), _field(record, ANSWER_KEYS)
        if question is None:
            reason = "missing_question"
        elif answer is None:
            reason = "missing_answer"
        else:
            items.append(Item(question, answer))
    return items, (None if items else reason or "missing_question")


def _fact_text(fact: object) -> str:
    if isinstance(fact, str):
        return fact.strip()
    if isinstance(fact, dict):
        pairs = [f"{k}：{v}" if not str(k).isascii() else f"{k}: {v}" for k, v in fact.items() if str(v).strip()]
        return "; ".join(pairs)
    return ""


def _line_items(text: str, task: str) -> tuple[list[Item], str | None]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if task == "extract":
        facts = [m.group(1).strip() for m in map(_FACT_LINE.match, lines) if m]
        facts = [fact for fact in facts if fact]
        return ([Item(None, "\n".join(f"- {fact}" for fact in facts))], None) if facts else ([], "missing_facts")
    if task == "summary":
        for line in lines:
            if _SUMMARY_LABEL.match(line):
                summary = _SUMMARY_LABEL.sub("", line).strip()
                return ([Item(None, summary)], None) if summary else ([], "missing_summary")
        return [], "missing_summary"
    items: list[Item] = []
    question: str | None = None
    reason: str | None = None
    for line in lines:
        if _QUESTION_LABEL.match(line):
            if question is not None:
                reason = "missing_answer"  # a question followed by another question
            question = _QUESTION_LABEL.sub("", line).strip() or None
        elif _ANSWER_LABEL.match(line):
            answer = _ANSWER_LABEL.sub("", line).strip()
            if question is None:
                reason = "missing_question"
            elif not answer:
                reason = "missing_answer"
            else:
                items.append(Item(question, answer))
            question = None
    if question is not None and not items:
        reason = "missing_answer"
    return items, (None if items else reason or "unparseable_reply")


def parse_reply(text: str | None, task: str, reply: str) -> tuple[list[Item], str | None]:
    """Items in a reply to a `task` prompt whose reply form is `reply` (json or lines).

    A JSON prompt's reply that holds no JSON is still read as labelled lines (small instruct models
    often answer "Question: …" anyway), and vice versa.
    """
    if text is None or not text.strip():
        return [], "empty_reply"
    try:
        values = _json_values(text) if reply == "json" or text.lstrip()[:1] in "{[`" else []
    except TooDeep:
        return [], "unparseable_reply"
    for value in values:
        items, reason = _json_items(value, task)
        if items or reason != "unparseable_reply":
            return items, reason
    items, reason = _line_items(text, task)
    if not items and reply == "json" and not values:
        return [], "not_json"
    return items, reason


def parse_question(text: str | None, answer: str) -> tuple[list[Item], str | None]:
    """An answer-first reply: the first line is the question for the given `answer`."""
    if text is None or not text.strip():
        return [], "empty_reply"
    question = _QUESTION_LABEL.sub("", text.strip().splitlines()[0]).strip()
    return ([Item(question, answer)], None) if question else ([], "missing_question")


def parse_verdict(text: str | None) -> bool | None:
    """A judge's yes/no (是/否); None when the reply says neither first."""
    if not text:
        return None
    head = text.strip().lstrip("\"'“「*").lower()
    if head.startswith(("是", "yes", "支持", "true")):
        return True
    if head.startswith(("否", "no", "不", "false")):
        return False
    return None


def parse_answer(text: str | None) -> str | None:
    """A round-trip reply: the first line, without an "答案：" / "Answer:" label; None when empty."""
    if not text or not text.strip():
        return None
    answer = _ANSWER_LABEL.sub("", text.strip().splitlines()[0]).strip().rstrip("。.")
    return answer or None
