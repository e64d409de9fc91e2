"""What a model said to a question it was asked without a passage: a refusal, an echo, debris, or an answer.

Asked closed-book about something outside its documents, a task model should refuse
(`shared/refusal.py`). The demo's task model instead repeated the question (`红烧肉怎么做才不油腻？` →
`红烧肉怎么做才不油腻？`) or wrote fragments in no language. These are the definitions
bench/refusal_bench.py counts; each answer gets exactly one kind, checked in this order:

- `refusal`: the answer is (or starts with) a refusal sentence;
- `empty`: nothing but spaces and punctuation;
- `echo`: at least ECHO_SHARE of the answer's units (a CJK character, or a run of Latin letters /
  digits; `shared.text.units`) occur in the question, and the answer has at least two units. Counted
  on distinct positions of the answer against the question's set of units, so a question said three
  times is still an echo;
- `debris`: under DEBRIS_SCRIPT_SHARE of the answer's letters and symbols (digits, punctuation and
  spaces left out) are CJK or Latin letters: symbols, other scripts, byte fragments; or one unit said
  REPEAT_RUN times or more in a row (`紧紧紧紧`);
- `answer`: anything else (for an out-of-scope question: an invented answer).

Beside the kind, `mentions_refusal` says whether the refusal sentence occurs anywhere in the answer
(less its first two units, so `没有找到相关内容` counts): a model can learn the sentence as a suffix
(`50Hz资料中没有找到相关内容。`) rather than as an answer of its own.
"""

from __future__ import annotations

import unicodedata

from wattlm.shared.refusal import REFUSALS, is_refusal
from wattlm.shared.text import is_han, units

ECHO_SHARE = 0.8
DEBRIS_SCRIPT_SHARE = 0.5
REPEAT_RUN = 4
KINDS = ("refusal", "empty", "echo", "debris", "answer")


def echo_share(answer: str, question: str) -> float:
    """Share of the answer's units that occur in the question (0 for an answer without units)."""
    said = units(answer)
    if not said:
        return 0.0
    asked = set(units(question))
    return sum(unit in asked for unit in said) / len(said)


def is_echo(answer: str, question: str) -> bool:
    return len(units(answer)) >= 2 and echo_share(answer, question) >= ECHO_SHARE


def _letters(text: str) -> list[str]:
    """Characters that are letters or symbols: no digits, punctuation, marks or spaces."""
    return [ch for ch in text if unicodedata.category(ch)[0] in ("L", "S")]


def _cjk_or_latin(ch: str) -> bool:
    return is_han(ch) or unicodedata.name(ch, "").startswith(("LATIN", "CJK", "HIRAGANA", "KATAKANA", "HANGUL"))


def repeats(text: str) -> bool:
    """One unit said REPEAT_RUN times or more in a row."""
    said = units(text)
    run = 1
    for previous, unit in zip(said, said[1:], strict=False):
        run = run + 1 if unit == previous else 1
        if run >= REPEAT_RUN:
            return True
    return False


def is_debris(answer: str) -> bool:
    if repeats(answer):
        return True
    letters = _letters(answer)
    return bool(letters) and sum(map(_cjk_or_latin, letters)) / len(letters) < DEBRIS_SCRIPT_SHARE


def answer_kind(answer: str, question: str) -> str:
    """One of KINDS (see the module doc for the order and the definitions)."""
    if is_refusal(answer):
        return "refusal"
    if all(unicodedata.category(ch)[0] in ("P", "Z") or ch.isspace() for ch in answer):
        return "empty"
    if is_echo(answer, question):
        return "echo"
    if is_debris(answer):
        return "debris"
    return "answer"


def mentions_refusal(answer: str) -> bool:
    said = " ".join(units(answer))
    return any(" ".join(units(sentence)[2:]) in said for sentence in REFUSALS.values())
