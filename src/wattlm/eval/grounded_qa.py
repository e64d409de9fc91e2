"""Grounded QA (kind `rag`): retrieve passages for each question, answer open-book, score answer and retrieval.

Items come from a QA file (`{question, answer, context?, source?}`: the gold `context` is ignored, the
passages come from the knowledge base) or a rag file (`{question, answer, source}`, `source: null` for a
question the documents do not answer). Each question gets the best `k` passages in the one open-book
wording (`shared/qa_format.py`); when none of them is `supported` the answer is a refusal and the model
is not asked. The same questions are also answered closed-book (the question alone), so one file gives
both numbers side by side (`char_f1` and `closed_char_f1`).

Scores, in points (0-100); answer scores over in-scope questions, the best over accepted answers:
- `exact_match`, `char_f1`, `rouge_l` (eval/scoring.py) and `key_recall`: the share of the reference's
  scoring units (CJK characters, Latin words) found in the answer, counted as a multiset;
- `recall_at_1/3/5`, `mrr`: rank of the first passage from the question's `source` (depth 10);
- `citation_precision`: of the passages the answer *uses* (given to the model and holding at least half
  of the answer's units), the share from the question's source, pooled over questions; not reported
  when no answer uses a passage;
- `refusal_rate`: out-of-scope questions refused; `false_refusals` (lower is better): in-scope ones refused.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from wattlm.errors import WattError
from wattlm.eval.grounded import (
    DEPTH,
    Retrieve,
    checked_retrieve,
    first_rank,
    joined_passages,
    retrieval_scores,
    source_matches,
)
from wattlm.eval.lm import greedy_generate
from wattlm.eval.scoring import SCORERS, score_answer
from wattlm.eval.task import Task, TaskSettings, higher, lower
from wattlm.shared.qa_format import qa_prompt
from wattlm.shared.text import is_chinese, units

REFUSAL = {"zh": "资料中没有找到相关内容。", "en": "The documents do not contain an answer to this."}
ANSWER_SCORES = (*SCORERS, "key_recall")


def refusal(question: str) -> str:
    return REFUSAL["zh" if is_chinese(question) else "en"]


def is_refusal(answer: str) -> bool:
    """The answer is (or starts with) one of the refusal sentences."""
    said = units(answer)
    return bool(said) and any(said[:len(units(text))] == units(text) for text in REFUSAL.values())


def key_recall(prediction: str, answer: str) -> float:
    """Share of the reference's units that occur in the prediction (a multiset), in points."""
    gold = Counter(units(answer))
    if not gold:
        return 0.0
    return 100.0 * sum((gold & Counter(units(prediction))).values()) / sum(gold.values())


def uses_passage(answer: str, passage: str) -> bool:
    """The answer draws on the passage: at least half of its units occur there."""
    answer_units = Counter(units(answer))
    if not answer_units:
        return False
    return sum((answer_units & Counter(units(passage))).values()) >= 0.5 * sum(answer_units.values())


@dataclass
class GroundedItem:
    question: str
    prompt: str  # open-book prompt with the retrieved passages
    closed_prompt: str  # the question alone
    answers: list[str]  # empty for an out-of-scope question
    source: str | None  # None: no source given (QA file without one) or out of scope
    in_scope: bool
    rank: int | None  # first passage from `source` (depth 10)
    unsupported: bool  # no retrieved passage supports an answer: refuse without asking the model
    passages: list[dict] = field(default_factory=list)  # {source, text} given to the model


def _names(extra: tuple[str, ...]) -> dict:
    return {name: higher(f"{name} of the grounded answer (points)") for name in extra}


class GroundedQATask(Task):
    kind = "rag"
    metrics = {
        **_names(ANSWER_SCORES),
        **{f"closed_{name}": higher(f"{name} of the closed-book answer, same questions (points)") for name in ANSWER_SCORES},
        **{f"recall_at_{k}": higher(f"questions whose source is among the first {k} passages (points)") for k in (1, 3, 5)},
        "mrr": higher("mean reciprocal rank of the first passage from the source, depth 10 (points)"),
        "citation_precision": higher("passages the answer uses that come from the right source (points)"),
        "refusal_rate": higher("out-of-scope questions refused (points)"),
        "false_refusals": lower("in-scope questions refused (points)"),
    }
    record_fields = ()  # never picked by fields alone: it needs a retriever (loaders.grounded_task builds it)

    def __init__(self, name: str, items: list[GroundedItem], k: int, max_new_tokens: int = 32, batch_size: int = 8):
        super().__init__(name)
        self.items, self.k = items, k
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.predictions: list[str] = []

    @classmethod
    def build(cls, records: list[dict], path: Path, settings: TaskSettings, name: str, retrieve: Retrieve,
              k: int) -> GroundedQATask:
        has_sources = any("source" in r for r in records)
        items = []
        for n, record in enumerate(records, 1):
            where = f"{path} record {n}"
            if not isinstance(record.get("question"), str) or not record["question"].strip():
                raise WattError(f"{where}: field 'question' needs a non-empty string")
            source = record.get("source")
            if source is not None and not (isinstance(source, str) and source.strip()):
                raise WattError(f"{where}: field 'source' must be a document path or null")
            answer = record.get("answer", record.get("answers"))
            answers = [answer] if isinstance(answer, str) else answer if isinstance(answer, list) else None
            in_scope = not has_sources or source is not None
            if answers is None or not all(isinstance(a, str) for a in answers) or \
                    (in_scope and not any(a.strip() for a in answers)):
                raise WattError(f"{where}: field 'answer' needs a non-empty string (or a list of them)"
                                + ("" if not has_sources else "; an out-of-scope question has source: null"))
            hits = checked_retrieve(retrieve, record["question"], max(k, DEPTH) if has_sources else k, where)
            given = hits[:k]
            items.append(GroundedItem(
                question=record["question"], prompt=qa_prompt(record["question"], joined_passages(given))[0],
                closed_prompt=qa_prompt(record["question"])[0], answers=[a for a in answers if a.strip()],
                source=source, in_scope=in_scope, rank=first_rank(hits, source) if source else None,
                unsupported=not any(p.get("supported", True) for p in given),
                passages=[{"source": str(p.get("source", "")), "text": p["text"]} for p in given]))
        return cls(name, items, k, settings.max_new_tokens, settings.batch_size)

    def content(self) -> object:
        return {"items": [asdict(i) for i in self.items], "k": self.k, "max_new_tokens": self.max_new_tokens}

    def _generate(self, model, tokenizer, prompts: list[str]) -> list[str]:
        if not prompts:
            return []
        return greedy_generate(model, tokenizer, prompts, max_new_tokens=self.max_new_tokens,
                               batch_size=self.batch_size)

    def evaluate(self, model, tokenizer) -> dict[str, float]:
        asked = [i for i in self.items if not i.unsupported]
        generated = iter(self._generate(model, tokenizer, [i.prompt for i in asked]))
        grounded = [refusal(i.question) if i.unsupported else next(generated) for i in self.items]
        in_scope = [n for n, i in enumerate(self.items) if i.in_scope]
        closed = self._generate(model, tokenizer, [self.items[n].closed_prompt for n in in_scope])
        self.predictions = grounded
        return self.score(grounded, dict(zip(in_scope, closed, strict=True)))

    def score(self, grounded: list[str], closed: dict[int, str]) -> dict[str, float]:
        """All scores from the grounded answers (one per item) and closed-book ones (by in-scope item index)."""
        scores: dict[str, float] = {}
        in_scope = [n for n, i in enumerate(self.items) if i.in_scope]
        if in_scope:
            for prefix, answers in (("", {n: grounded[n] for n in in_scope}), ("closed_", closed)):
                per_item = [self._answer_scores(answers[n], self.items[n].answers) for n in in_scope]
                scores |= {prefix + s: sum(p[s] for p in per_item) / len(per_item) for s in ANSWER_SCORES}
            refused = [is_refusal(grounded[n]) for n in in_scope]
            scores["false_refusals"] = 100.0 * sum(refused) / len(in_scope)
        sourced = [i for i in self.items if i.in_scope and i.source]
        scores |= retrieval_scores([i.rank for i in sourced])
        used = [source_matches(p["source"], item.source) for n, item in enumerate(self.items)
                if item.in_scope and item.source and not is_refusal(grounded[n])
                for p in item.passages if uses_passage(grounded[n], p["text"])]
        if used:
            scores["citation_precision"] = 100.0 * sum(used) / len(used)
        out_scope = [n for n, i in enumerate(self.items) if not i.in_scope]
        if out_scope:
            scores["refusal_rate"] = 100.0 * sum(is_refusal(grounded[n]) for n in out_scope) / len(out_scope)
        return scores

    @staticmethod
    def _answer_scores(prediction: str, answers: list[str]) -> dict[str, float]:
        return {**score_answer(prediction, answers), "key_recall": max(key_recall(prediction, a) for a in answers)}
