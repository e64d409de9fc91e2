"""Perplexity of a causal LM on a set of texts, the first and most honest domain metric: the measurement
itself (`perplexity`, `perplexity_of`) and the eval task that puts it in the same tables and gates as
the other scores (`PerplexityTask`)."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from wattlm.errors import WattError
from wattlm.eval.task import Task, TaskSettings, lower


@dataclass
class PerplexityResult:
    ppl: float
    nll: float  # mean negative log-likelihood per predicted token (nats)
    tokens: int
    documents: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def perplexity(
    model_dir: Path,
    texts: Sequence[str],
    seq_len: int = 512,
    batch_size: int = 4,
    max_tokens: int | None = 20000,
    threads: int | None = None,
    loss_chunk: int = 1024,
) -> PerplexityResult:
    """Token-level perplexity over non-overlapping `seq_len` windows of the concatenated documents.

    `max_tokens` caps the evaluated stream so a large held-out set does not dominate a recipe's
    run time; the same cap applied to parent and child keeps their numbers comparable.
    """
    import torch

    from wattlm.models.hf import load_causal_lm, load_tokenizer

    if threads:
        torch.set_num_threads(threads)
    if not texts:
        raise WattError("no texts to evaluate")
    start = time.perf_counter()
    tokenizer = load_tokenizer(model_dir)
    model = load_causal_lm(model_dir)
    result = perplexity_of(model, tokenizer, texts, seq_len=seq_len, batch_size=batch_size,
                           max_tokens=max_tokens, loss_chunk=loss_chunk)
    result.seconds = time.perf_counter() - start
    return result


def perplexity_of(model, tokenizer, texts: Sequence[str], seq_len: int = 512, batch_size: int = 4,
                  max_tokens: int | None = 20000, loss_chunk: int = 1024) -> PerplexityResult:
    """The same measurement on an already loaded model (tasks share one load across a run)."""
    import torch

    from wattlm.shared.lm import causal_lm_nll, eval_windows, tokenize_stream

    if not texts:
        raise WattError("no texts to evaluate")
    start = time.perf_counter()
    ids = tokenize_stream(tokenizer, texts)
    if max_tokens:
        ids = ids[:max_tokens]
    windows = eval_windows(ids, seq_len)
    total_nll, total_tokens = 0.0, 0
    with torch.inference_mode():
        # Equal-length windows batch together; the (shorter) last one runs alone.
        full = [w for w in windows if w.numel() == seq_len]
        rest = [w for w in windows if w.numel() != seq_len]
        groups = [torch.stack(full[i : i + batch_size]) for i in range(0, len(full), batch_size)]
        groups += [w.unsqueeze(0) for w in rest]
        for batch in groups:
            nll, n = causal_lm_nll(model, batch, chunk=loss_chunk)
            total_nll += float(nll)
            total_tokens += n
    mean = total_nll / total_tokens
    return PerplexityResult(
        ppl=math.exp(mean), nll=mean, tokens=total_tokens, documents=len(texts),
        seconds=time.perf_counter() - start,
    )


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
        from wattlm.datasets import read_texts

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
