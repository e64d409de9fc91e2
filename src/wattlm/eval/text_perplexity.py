"""Perplexity on a text set as a task, so it sits in the same tables and gates as the other scores."""

from __future__ import annotations

import hashlib

from wattlm.eval.perplexity import perplexity_of
from wattlm.eval.task import Task


class PerplexityTask(Task):
    kind = "ppl"

    def __init__(self, name: str, texts: list[str], seq_len: int = 512, batch_size: int = 4,
                 max_tokens: int | None = 20000):
        super().__init__(name)
        self.items = texts
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.max_tokens = max_tokens

    def content(self) -> object:
        digest = hashlib.sha256("\x1e".join(self.items).encode()).hexdigest()
        return {"texts": digest, "seq_len": self.seq_len, "max_tokens": self.max_tokens}

    def evaluate(self, model, tokenizer) -> dict[str, float]:
        result = perplexity_of(model, tokenizer, self.items, seq_len=self.seq_len, batch_size=self.batch_size,
                               max_tokens=self.max_tokens)
        return {"ppl": result.ppl}
