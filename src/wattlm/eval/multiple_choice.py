"""Multiple choice by log-likelihood, as lm-evaluation-harness scores it.

Each choice is scored as a continuation of the prompt; `acc` picks the highest total log-probability,
`acc_norm` the highest log-probability per character of the choice text (long choices are not
penalised for having more tokens). Scores are in points (0-100).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from wattlm.eval.lm import loglikelihoods
from wattlm.eval.task import Task


@dataclass
class ChoiceItem:
    prompt: str  # rendered context, e.g. "问题：……\n答案："
    choices: list[str]
    answer: int  # index into choices
    delimiter: str = ""  # put between prompt and each choice (" " for English, "" for Chinese)


class MultipleChoiceTask(Task):
    kind = "mc"

    def __init__(self, name: str, items: list[ChoiceItem], batch_size: int = 8):
        super().__init__(name)
        self.items = items
        self.batch_size = batch_size

    def content(self) -> object:
        return [asdict(item) for item in self.items]

    def evaluate(self, model, tokenizer) -> dict[str, float]:
        requests = [(item.prompt, item.delimiter + choice) for item in self.items for choice in item.choices]
        scored = loglikelihoods(model, tokenizer, requests, batch_size=self.batch_size)
        return self.score([c.logprob for c in scored])

    def score(self, logprobs: list[float]) -> dict[str, float]:
        """acc and acc_norm from one log-probability per (item, choice), in item order."""
        hits = hits_norm = 0
        offset = 0
        for item in self.items:
            lls = logprobs[offset:offset + len(item.choices)]
            offset += len(item.choices)
            best = max(range(len(lls)), key=lambda j: lls[j])
            best_norm = max(range(len(lls)), key=lambda j: lls[j] / max(1, len(item.choices[j])))
            hits += best == item.answer
            hits_norm += best_norm == item.answer
        n = len(self.items)
        return {"acc": 100.0 * hits / n, "acc_norm": 100.0 * hits_norm / n,
                "chance": 100.0 * sum(1 / len(i.choices) for i in self.items) / n}
