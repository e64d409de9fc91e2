"""Multiple choice by log-likelihood, as lm-evaluation-harness scores it.

Each choice is scored as a continuation of the prompt; `acc` picks the highest total log-probability,
`acc_norm` the highest log-probability per character of the choice text (long choices are not
penalised for having more tokens). Scores are in points (0-100).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from wattlm.errors import WattError
from wattlm.eval.lm import loglikelihoods
from wattlm.eval.task import Task, TaskSettings, higher, require_fields, with_fewshot
from wattlm.shared.text import is_chinese


@dataclass
class ChoiceItem:
    prompt: str  # rendered context, e.g. "问题：……\n答案："
    choices: list[str]
    answer: int  # index into choices
    delimiter: str = ""  # put between prompt and each choice (" " for English, "" for Chinese)


def _mc_prompt(record: dict) -> tuple[str, str]:
    zh = is_chinese(record["question"])
    passage = record.get("context")
    if zh:
        head = f"阅读材料：{passage}\n" if passage else ""
        return f"{head}问题：{record['question']}\n答案：", ""
    head = f"Passage: {passage}\n" if passage else ""
    return f"{head}Question: {record['question']}\nAnswer:", " "


def _gold_index(answer, choices: list[str], where: str) -> int:
    if isinstance(answer, bool):
        raise WattError(f"{where}: field answer must be an index, a letter or a choice text")
    if isinstance(answer, int):
        index = answer
    elif isinstance(answer, str) and answer in choices:
        index = choices.index(answer)
    elif isinstance(answer, str) and answer.isdigit():
        index = int(answer)
    elif isinstance(answer, str) and len(answer.strip()) == 1 and answer.strip().isalpha():
        index = ord(answer.strip().upper()) - ord("A")
    else:
        raise WattError(f"{where}: field answer {answer!r} is not an index, a letter or one of the choices")
    if not 0 <= index < len(choices):
        raise WattError(f"{where}: field answer {answer!r} is out of range for {len(choices)} choices")
    return index


class MultipleChoiceTask(Task):
    kind = "mc"
    metrics = {"acc": higher("share of items whose highest log-likelihood choice is the answer"),
               "acc_norm": higher("the same with log-likelihood per character of the choice"),
               "chance": higher("accuracy of guessing, for reference")}
    record_fields = ("question", "choices")

    def __init__(self, name: str, items: list[ChoiceItem], batch_size: int = 8):
        super().__init__(name)
        self.items = items
        self.batch_size = batch_size

    @classmethod
    def from_records(cls, records: list[dict], path: Path, settings: TaskSettings, name: str) -> MultipleChoiceTask:
        """{"question": str, "choices": [str, ...], "answer": index | letter | choice text, "context": optional}."""
        shots = settings.num_fewshot or 0
        items = []
        for n, record in enumerate(records, 1):
            where = f"{path} record {n}"
            require_fields(record, {"question": str, "choices": list, "answer": (int, str)}, where)
            if len(record["choices"]) < 2 or not all(isinstance(c, str) and c for c in record["choices"]):
                raise WattError(f"{where}: field 'choices' needs at least two non-empty strings")
            prompt, delimiter = _mc_prompt(record)
            items.append(ChoiceItem(prompt, record["choices"], _gold_index(record["answer"], record["choices"], where), delimiter))
        prompts = with_fewshot([i.prompt for i in items], [i.choices[i.answer] for i in items],
                               [i.delimiter for i in items], shots, "\n\n")
        for item, prompt in zip(items, prompts, strict=True):
            item.prompt = prompt
        return cls(name, items, batch_size=settings.batch_size)

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
