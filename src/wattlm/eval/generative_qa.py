"""Generative QA: greedy one-line answers scored by exact match, character F1 and ROUGE-L.

Open-book items carry their passage in the prompt, and few-shot examples are already in front of it
(the loader renders both); a model with a chat template gets the template around the whole prompt.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from wattlm.errors import WattError
from wattlm.eval.lm import greedy_generate
from wattlm.eval.scoring import SCORERS, score_answer
from wattlm.eval.task import Task, TaskSettings, higher, require_fields, with_fewshot
from wattlm.shared.qa_format import qa_prompt


@dataclass
class QAItem:
    prompt: str  # rendered question (and passage), ending where the answer starts
    answers: list[str]  # accepted answers; each score takes the best one


class GenerativeQATask(Task):
    kind = "qa"
    metrics = {name: higher(f"{name} of the greedy answer against the best reference (points)") for name in SCORERS}
    record_fields = ("question",)

    def __init__(self, name: str, items: list[QAItem], max_new_tokens: int = 32, batch_size: int = 8,
                 stop: tuple[str, ...] = ()):
        super().__init__(name)
        self.items = items
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.stop = stop  # extra strings an answer is cut at (it always ends at a newline)
        self.predictions: list[str] = []  # from the last evaluate(), for reports and debugging

    @classmethod
    def from_records(cls, records: list[dict], path: Path, settings: TaskSettings, name: str) -> GenerativeQATask:
        """{"question": str, "answer": str | [str, ...], "context": str (optional, open book)}."""
        shots = settings.num_fewshot or 0
        qa_items, delimiters = [], []
        for n, record in enumerate(records, 1):
            where = f"{path} record {n}"
            record = {**record, "answer": record.get("answer", record.get("answers"))}
            require_fields(record, {"question": str, "answer": (str, list)}, where)
            answers = [record["answer"]] if isinstance(record["answer"], str) else record["answer"]
            if not answers or not all(isinstance(a, str) and a.strip() for a in answers):
                raise WattError(f"{where}: field 'answer' needs a non-empty string (or a list of them)")
            if "context" in record and not isinstance(record["context"], str):
                raise WattError(f"{where}: field 'context' must be a string")
            prompt, delimiter = qa_prompt(record["question"], record.get("context"))
            qa_items.append(QAItem(prompt, answers))
            delimiters.append(delimiter)
        prompts = with_fewshot([i.prompt for i in qa_items], [i.answers[0] for i in qa_items], delimiters, shots, "\n\n")
        for item, prompt in zip(qa_items, prompts, strict=True):
            item.prompt = prompt
        return cls(name, qa_items, max_new_tokens=settings.max_new_tokens, batch_size=settings.batch_size)

    def content(self) -> object:
        return {"items": [asdict(i) for i in self.items], "max_new_tokens": self.max_new_tokens,
                "stop": list(self.stop)}

    def evaluate(self, model, tokenizer) -> dict[str, float]:
        answers = greedy_generate(model, tokenizer, [i.prompt for i in self.items],
                                  max_new_tokens=self.max_new_tokens, batch_size=self.batch_size)
        for stop in self.stop:
            answers = [a.split(stop, 1)[0].strip() for a in answers]
        self.predictions = answers
        return self.score(answers)

    def score(self, predictions: list[str]) -> dict[str, float]:
        per_item = [score_answer(p, item.answers) for p, item in zip(predictions, self.items, strict=True)]
        return {name: sum(s[name] for s in per_item) / len(per_item) for name in per_item[0]}
