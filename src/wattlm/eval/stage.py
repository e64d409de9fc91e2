"""`watt eval` as a registry step: scores are stored on the model artifact, so lineage shows them."""

from __future__ import annotations

from wattlm.datasets import dataset_texts
from wattlm.models.store import hf_dir
from wattlm.registry import Artifact, Registry


def metric_key(textset: Artifact, split: str) -> str:
    return f"ppl:{textset.name}/{split}@{textset.id}"


def perplexity_on(
    registry: Registry, model: Artifact, textset: Artifact, split: str, *, seq_len: int = 512,
    batch_size: int = 4, max_tokens: int | None = 20000,
) -> tuple[dict, bool]:
    """Perplexity of `model` on one split of `textset`; reuses a stored score with the same settings."""
    key = metric_key(textset, split)
    settings = {"seq_len": seq_len, "max_tokens": max_tokens}
    stored = model.metrics.get(key)
    if stored and stored.get("settings") == settings:
        return stored, True
    from wattlm.eval.perplexity import perplexity

    result = perplexity(
        hf_dir(registry, model), list(dataset_texts(textset, split)), seq_len=seq_len,
        batch_size=batch_size, max_tokens=max_tokens,
    )
    score = {"ppl": round(result.ppl, 4), "tokens": result.tokens, "documents": result.documents,
             "settings": settings, "seconds": round(result.seconds, 1)}
    registry.add_metrics(model.id, {key: score})
    return score, False
