"""Grounded multiple choice (kind `ragmc`): retrieve passages with the question, then score the choices.

The MC task's own scoring (log-likelihood of each choice, `acc` and `acc_norm`, eval/multiple_choice.py)
with the retrieved passages in the prompt (`阅读材料：…\n问题：…\n答案：`, the MC task's open-book
wording) instead of a gold `context`. A record's `source`, when given, also yields recall@1/3/5 and
MRR of the retrieval (eval/grounded.py), in points. Closed-book MC is the plain `mc` task on the same
file, stored as `mc:<set>:acc` beside `ragmc:<set>:acc`.
"""

from __future__ import annotations

from pathlib import Path

from wattlm.errors import WattError
from wattlm.eval.grounded import DEPTH, Retrieve, checked_retrieve, first_rank, joined_passages, retrieval_scores
from wattlm.eval.multiple_choice import MultipleChoiceTask
from wattlm.eval.task import TaskSettings, higher


class GroundedMCTask(MultipleChoiceTask):
    kind = "ragmc"
    metrics = {**MultipleChoiceTask.metrics,
               **{f"recall_at_{k}": higher(f"questions whose source is among the first {k} passages (points)")
                  for k in (1, 3, 5)},
               "mrr": higher("mean reciprocal rank of the first passage from the source, depth 10 (points)")}
    record_fields = ()  # never picked by fields alone: it needs a retriever (loaders.grounded_task builds it)

    def __init__(self, name, items, batch_size: int = 8, ranks: list[int | None] | None = None, k: int = 3):
        super().__init__(name, items, batch_size=batch_size)
        self.ranks = ranks or []  # first rank of the source, for items that name one
        self.k = k

    @classmethod
    def build(cls, records: list[dict], path: Path, settings: TaskSettings, name: str, retrieve: Retrieve,
              k: int) -> GroundedMCTask:
        grounded, ranks = [], []
        for n, record in enumerate(records, 1):
            where = f"{path} record {n}"
            if not isinstance(record.get("question"), str) or not record["question"].strip():
                raise WattError(f"{where}: field 'question' needs a non-empty string")
            source = record.get("source")
            hits = checked_retrieve(retrieve, record["question"], max(k, DEPTH) if source else k, where)
            if isinstance(source, str) and source.strip():
                ranks.append(first_rank(hits, source))
            grounded.append({**record, "context": joined_passages(hits[:k])})
        task = cls.from_records(grounded, path, settings, name)
        task.ranks, task.k = ranks, k
        return task

    def content(self) -> object:
        return {"items": super().content(), "ranks": self.ranks, "k": self.k}

    def evaluate(self, model, tokenizer) -> dict[str, float]:
        return {**super().evaluate(model, tokenizer), **retrieval_scores(self.ranks)}
