"""The one refusal sentence: what a grounded answer says when the documents do not answer the question.

Serving (`serve/citations.py`) answers it when nothing retrieved supports an answer, and synthesis
(`synth/refusals.py`) trains the task model to say it for questions its corpus cannot answer, so the
model and the server refuse in the same words, in the question's language.
"""

from __future__ import annotations

from wattlm.shared.text import is_chinese, units

REFUSALS = {"zh": "资料中没有找到相关内容。", "en": "The documents do not contain this."}
# Earlier wording of the English refusal (the grounded QA eval's); still recognised as a refusal.
_ALSO_REFUSALS = ("The documents do not contain an answer to this.",)


def refusal(question: str) -> str:
    """The refusal in the question's language (Chinese if it has hanzi, else English)."""
    return REFUSALS["zh" if is_chinese(question) else "en"]


def refusal_for(lang: str) -> str:
    return REFUSALS["zh" if lang == "zh" else "en"]


def is_refusal(answer: str) -> bool:
    """The answer is (or starts with) a refusal sentence."""
    said = units(answer)
    return bool(said) and any(said[:len(units(text))] == units(text)
                              for text in (*REFUSALS.values(), *_ALSO_REFUSALS))
