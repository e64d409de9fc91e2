"""Optional perplexity filter: a small reference model scores each document; gibberish scores high.

CCNet (Wenzek et al. 2019) ranks web text by the perplexity of a language model trained on clean text:
machine-generated spam, keyword lists and broken encodings read as improbable. Here the reference is
any GGUF llama.cpp loads (a packaged model or a registered export), scored on the first
`perplexity_tokens` tokens of each document with the log-softmax the serving scorer uses. It is slow
(a forward pass per document), so it is off unless `perplexity_model` is set, and it runs last among
the per-document filters so it scores only documents every cheaper filter kept.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field

from wattlm.data.base import Filter, StepParams, path_under
from wattlm.data.document import Document
from wattlm.data.stats import bin_index, histogram_rows
from wattlm.errors import NotFound

PPL_EDGES = (1.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1_000.0, 2_000.0, 5_000.0, 10_000.0, float("inf"))
_CACHE_DIR = Path.home() / ".cache" / "wattlm" / "packaged"


def gguf_file(model: str) -> Path:
    """A .gguf path as given, or the file of a packaged model (models/packaged.py)."""
    if model.endswith(".gguf"):
        path = Path(model)
        if not path.is_file():
            raise NotFound(f"perplexity model not found: {path} (step filter_perplexity, param model)")
        return path
    from wattlm.models.packaged import materialize

    folder, name = materialize(model, _CACHE_DIR)
    return folder / name


@lru_cache(maxsize=1)
def _llama(path: str, n_ctx: int, n_threads: int | None) -> Any:
    """One llama.cpp context per process, reused by every shard it runs."""
    from wattlm.engines.lazy_llama import LazyLlama

    return LazyLlama(Path(path), n_ctx, n_threads, options=lambda llama_cpp: {"logits_all": True}).get()


def perplexity(llm: Any, text: str, max_tokens: int) -> float:
    """exp(mean negative log-probability) of the first `max_tokens` tokens of `text` (after BOS)."""
    from wattlm.engines.compute_thread import compute
    from wattlm.shared.lm import log_softmax

    tokens = llm.tokenize(text.encode("utf-8"), add_bos=True)[:max_tokens]
    if len(tokens) < 2:
        return float("inf")
    llm.reset()
    compute(llm.eval, tokens)  # on the process's compute thread (engines/compute_thread.py)
    logits = llm.scores[: len(tokens) - 1]  # (n - 1, n_vocab): row i predicts token i + 1
    logprobs = log_softmax(logits)
    total = sum(float(row[token]) for row, token in zip(logprobs, tokens[1:], strict=True))
    return math.exp(-total / (len(tokens) - 1))


class PerplexityParams(StepParams):
    model: str = Field(
        description="GGUF file, or a packaged model name (smollm2-135m, gemma3-270m), that scores each document's "
        "perplexity with llama.cpp."
    )
    max_perplexity: float = Field(1000.0, gt=1.0, description="Documents above this perplexity are dropped.")
    max_tokens: int = Field(256, ge=16, description="Tokens of the start of each document that are scored.")
    # One llama.cpp thread per worker process by default; parallelism comes from `workers`. On a shared
    # 2-core machine two spinning OpenMP threads made a 17-token eval take 15 s instead of 1.4 s.
    threads: int | None = Field(1, ge=1, description="llama.cpp threads per worker process (None: its default).")


class PerplexityFilter(Filter):
    """Drops documents whose perplexity under the reference model exceeds `max_perplexity`."""

    name = "filter_perplexity"
    drop_reason = "perplexity"
    Params = PerplexityParams
    requires = ("llama_cpp",)

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self.path = gguf_file(self.params.model)  # checked before any file is read
        self.histogram = [0] * (len(PPL_EDGES) - 1)

    def keep(self, doc: Document) -> bool:
        llm = _llama(str(self.path), self.params.max_tokens + 8, self.params.threads)
        score = perplexity(llm, doc.text, self.params.max_tokens)
        self.histogram[bin_index(min(score, 1e300), PPL_EDGES)] += 1
        doc.meta["perplexity"] = f"{score:.2f}"
        return score <= self.params.max_perplexity

    @classmethod
    def referenced_files(cls, params: PerplexityParams) -> list[Path]:
        return [Path(params.model)] if params.model.endswith(".gguf") else []  # a packaged name is not a file

    @classmethod
    def with_paths_under(cls, params: PerplexityParams, base: Path) -> PerplexityParams:
        if not params.model.endswith(".gguf"):
            return params
        return params.model_copy(update={"model": str(path_under(base, Path(params.model)))})

    def report_extras(self) -> dict[str, object]:
        return {"perplexity_histogram": histogram_rows(self.histogram, PPL_EDGES)}

    def extra_state(self) -> dict[str, object]:
        return {"histogram": list(self.histogram)}

    def merge_extra(self, extra: dict) -> None:
        self.histogram = [a + b for a, b in zip(self.histogram, extra["histogram"], strict=True)]
