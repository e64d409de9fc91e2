"""`watt eval` as a registry step: scores are stored on the model artifact, so lineage shows them.

One key scheme for every stored score (perplexity here, tasks in `runner.py`), on the model's metrics:
  `<kind>:<set>:<score>` -> a number, the stable name gates, `watt eval compare` and lineage read
      (`ppl:power-grid-corpus/heldout:ppl`, `qa:grid-qa:char_f1`);
  `<kind>:<set>` -> a record {"key", ...}: the content key the numbers belong to (the model's and the
      text's content keys and the settings), so a rerun with the same inputs recomputes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from wattlm.cache import content_key, fingerprint
from wattlm.datasets import dataset_texts
from wattlm.models.store import hf_dir
from wattlm.registry import Artifact, Registry


def score_set(textset: Artifact, split: str) -> str:
    """The `<set>` part of a perplexity's stored names: the text set's name and split."""
    return f"{textset.name}/{split}"


def metric_key(textset: Artifact, split: str) -> str:
    """The stored name of the perplexity number, e.g. `ppl:tiny-corpus/heldout:ppl`."""
    return f"ppl:{score_set(textset, split)}:ppl"


def scores_lock(registry: Registry, model: Artifact):
    """Held while a model's scores are checked, computed and stored: two runs scoring the same model
    queue here and the second reads the first's numbers (and no merge of the metrics is lost)."""
    return registry.key_lock(fingerprint("scores", content_key(model)))


def perplexity_on(
    registry: Registry, model: Artifact, textset: Artifact, split: str, *, seq_len: int = 512,
    batch_size: int = 4, max_tokens: int | None = 20000, loaded: Callable[[], tuple[object, object]] | None = None,
    precision: str = "fp32",
) -> tuple[dict, bool]:
    """Perplexity of `model` on one split of `textset`; reuses a stored score with the same key.

    `loaded` returns the model and tokenizer already in memory (a run scores several sets on one load);
    without it the model is loaded from its folder for this one score."""
    settings = {"seq_len": seq_len, "max_tokens": max_tokens}
    if precision != "fp32":  # fp32 adds nothing, so scores stored before `precision` existed keep their keys
        settings["precision"] = precision
    key = fingerprint("ppl", content_key(model), content_key(textset), split, settings)
    record_name = f"ppl:{score_set(textset, split)}"
    with scores_lock(registry, model):  # two runs scoring the same model queue; the second reads the first's
        stored = registry.get(model.id).metrics.get(record_name)
        if isinstance(stored, dict) and stored.get("key") == key and "ppl" in stored:
            return stored, True
        from wattlm.shared.precision import scoring_precision

        texts = list(dataset_texts(textset, split))
        with scoring_precision(precision):
            result = _perplexity(registry, model, texts, seq_len, batch_size, max_tokens, loaded)
        score = {"key": key, "ppl": round(result.ppl, 4), "tokens": result.tokens, "documents": result.documents,
                 "settings": settings, "seconds": round(result.seconds, 1)}
        registry.add_metrics(model.id, {record_name: score, metric_key(textset, split): score["ppl"]})
    return score, False


def _perplexity(registry: Registry, model: Artifact, texts: list[str], seq_len: int, batch_size: int,
                max_tokens: int | None, loaded):
    from wattlm.eval.perplexity import perplexity, perplexity_of

    if loaded is not None:
        lm, tokenizer = loaded()
        return perplexity_of(lm, tokenizer, texts, seq_len=seq_len, batch_size=batch_size, max_tokens=max_tokens)
    return perplexity(hf_dir(registry, model), texts, seq_len=seq_len, batch_size=batch_size, max_tokens=max_tokens)
