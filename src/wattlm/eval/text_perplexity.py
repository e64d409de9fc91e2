"""Perplexity on a text set as a task, so it sits in the same tables and gates as the other scores."""

from __future__ import annotations

import hashlib
from pathlib import Path

from wattlm.errors import WattError
from wattlm.eval.perplexity import perplexity_of
from wattlm.eval.task import Task, TaskSettings, lower


class PerplexityTask(Task):
    kind = "ppl"
    metrics = {"ppl": lower("perplexity on the texts (exp of the mean next-token loss)")}
    record_fields = ("text",)

    def __init__(self, name: str, texts: list[str], seq_len: int = 512, batch_size: int = 4,
                 max_tokens: int | None = 20000):
        super().__init__(name)
        self.items = texts
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.max_tokens = max_tokens

    @classmethod
    def from_path(cls, path: Path, settings: TaskSettings, name: str | None = None) -> PerplexityTask:
        """Perplexity on a text file or folder (.txt, .md, or JSONL with a text field)."""
        from wattlm.textsets import read_texts

        texts = [t for t in read_texts(path) if t.strip()][: settings.limit]
        if not texts:
            raise WattError(f"{path}: no text to evaluate")
        return cls(name or path.stem, texts, seq_len=settings.seq_len, batch_size=settings.batch_size,
                   max_tokens=settings.max_tokens)

    @classmethod
    def from_records(cls, records: list[dict], path: Path, settings: TaskSettings, name: str) -> PerplexityTask:
        return cls.from_path(path, settings, name)  # the text reader reads JSONL texts the same way

    def content(self) -> object:
        digest = hashlib.sha256("\x1e".join(self.items).encode()).hexdigest()
        return {"texts": digest, "seq_len": self.seq_len, "max_tokens": self.max_tokens}

    def evaluate(self, model, tokenizer) -> dict[str, float]:
        result = perplexity_of(model, tokenizer, self.items, seq_len=self.seq_len, batch_size=self.batch_size,
                               max_tokens=self.max_tokens)
        return {"ppl": result.ppl}
