"""Scores for generated answers: exact match, character F1 and ROUGE-L (in points, 0-100).

The measures themselves live in `wattlm.shared.text` (synth's round-trip filter uses char-F1 too);
this module is the QA task's table of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from wattlm.shared.text import char_f1, exact_match, rouge_l

SCORERS = {"exact_match": exact_match, "char_f1": char_f1, "rouge_l": rouge_l}


def score_answer(prediction: str, answers: Sequence[str]) -> dict[str, float]:
    """Each score against the best-matching reference (an item may list several accepted answers)."""
    return {name: max(fn(prediction, a) for a in answers) for name, fn in SCORERS.items()}
