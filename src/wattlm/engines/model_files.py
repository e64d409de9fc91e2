"""Which file a registry model is served from: its GGUF (the export itself, a GGUF model, or the model's
best export) for llama.cpp engines, its Hugging Face folder for transformers.

Used by `watt serve` and by stages that run a model in-process (a local synth teacher).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from wattlm.errors import WattError
from wattlm.registry import Artifact, Registry


def best_export(registry: Registry, model: Artifact, tolerance: float = 0.05) -> Artifact | None:
    """The export a server should load for `model`: the quant its recipe serves (the model's metric
    `served_quant`, set by `watt run`); else the smallest file whose measured perplexity is within
    `tolerance` of the f16 file's (q4_k_m costs a 270M model ~30 %, so it is not a given), falling back
    to size order q4_k_m, q8_0, f16 when no perplexity was measured. None if no export."""
    exports = [a for a in registry.children(model.id) if a.kind == "export" and (a.path / a.meta["file"]).exists()]
    if not exports:
        return None
    served = [a for a in exports if a.meta.get("quant") == model.metrics.get("served_quant")]  # a recipe's choice
    if served:
        return max(served, key=lambda a: a.created)
    reference = next((a.metrics.get("ppl") for a in exports if a.meta.get("quant") == "f16"), None)
    if reference:
        good = [a for a in exports if a.metrics.get("ppl") and a.metrics["ppl"] <= reference * (1 + tolerance)]
        if good:
            return min(good, key=lambda a: a.metrics.get("size_mb") or float("inf"))
    order = {"q4_k_m": 0, "q8_0": 1, "f16": 2}
    return min(exports, key=lambda a: order.get(a.meta.get("quant"), 3))


def served_file(registry: Registry, ref: str) -> tuple[Artifact, Path]:
    """The GGUF a model name/id is served from: the export itself, a GGUF model, or a model's best export."""
    from wattlm.models.store import resolve_model

    try:
        art = registry.get(ref, kind="export")
    except WattError:
        art = resolve_model(registry, ref)
    if art.format == "gguf":
        return art, art.path / art.meta["file"]
    export = best_export(registry, art)
    if export is None:
        raise WattError(f"model {art.name} ({art.id}) has no GGUF export yet; run `watt export --model {art.name}`")
    return art, export.path / export.meta["file"]


def model_source(registry: Registry, ref: str, loads: Literal["gguf", "hf"]) -> tuple[Artifact, Path]:
    """What an engine that `loads` GGUF files or HF folders (`EngineSpec.loads`) is built from for `ref`."""
    if loads == "gguf":
        return served_file(registry, ref)
    from wattlm.models.store import hf_dir, resolve_model

    art = resolve_model(registry, ref)
    return art, hf_dir(registry, art)
