"""A toy task kind for the plugin test: how long the model's greedy answer to each prompt is, in
characters (a brevity check: lower is better). One file; the test adds its table entry."""

from __future__ import annotations

from pathlib import Path

from wattlm.eval.lm import greedy_generate
from wattlm.eval.task import Task, TaskSettings, lower, require_fields


class AnswerLengthTask(Task):
    kind = "length"
    metrics = {"chars": lower("mean characters in the greedy answer")}
    record_fields = ("prompt",)

    def __init__(self, name: str, prompts: list[str], max_new_tokens: int = 16):
        super().__init__(name)
        self.items = prompts
        self.max_new_tokens = max_new_tokens

    @classmethod
    def from_records(cls, records: list[dict], path: Path, settings: TaskSettings, name: str) -> AnswerLengthTask:
        for n, record in enumerate(records, 1):
            require_fields(record, {"prompt": str}, f"{path} record {n}")
        return cls(name, [r["prompt"] for r in records], max_new_tokens=settings.max_new_tokens)

    def content(self) -> object:
        return {"prompts": self.items, "max_new_tokens": self.max_new_tokens}

    def evaluate(self, model, tokenizer) -> dict[str, float]:
        answers = greedy_generate(model, tokenizer, self.items, max_new_tokens=self.max_new_tokens)
        return {"chars": sum(len(a) for a in answers) / len(answers)}
