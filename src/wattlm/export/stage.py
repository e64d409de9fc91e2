"""`watt export` as a registry step: a model -> GGUF exports (f16 + quantized), each checked."""

from __future__ import annotations

from wattlm.cache import fingerprint
from wattlm.models.store import hf_dir
from wattlm.registry import Artifact, Registry


def export_model(
    registry: Registry, model: Artifact, quants: list[str], *, check_prompt: str = "The substation",
    check_tokens: int = 16, progress=None, ppl_set: tuple[Artifact, str] | None = None, seq_len: int = 512,
    max_tokens: int | None = 20000,
) -> tuple[list[Artifact], bool]:
    """Export `model` to GGUF f16 plus `quants`; returns (exports, reused).

    `ppl_set` (a dataset and split, e.g. the domain held-out) adds each file's llama.cpp perplexity to
    the table, with the windows `watt eval` uses, so quantization loss is read against transformers.
    """
    key = fingerprint("export", model.id, sorted(quants), check_prompt, check_tokens,
                      ppl_set[0].id if ppl_set else None, ppl_set[1] if ppl_set else None, seq_len, max_tokens)
    existing = [a for a in registry.children(model.id) if a.kind == "export" and a.meta.get("export_key") == key]
    if existing and len(existing) == len(quants) + 1 and all(a.path.exists() for a in existing):
        order = ["f16", *quants]
        return sorted(existing, key=lambda a: order.index(a.meta["quant"])), True
    from wattlm.datasets import dataset_texts
    from wattlm.export.gguf import check_gguf, convert_f16, hf_greedy, quantize, token_windows

    say = progress or (lambda message: None)
    source = hf_dir(registry, model)
    say(f"transformers greedy reference ({check_tokens} tokens)")
    prompt_ids, reference = hf_greedy(source, check_prompt, check_tokens)
    windows = None
    if ppl_set is not None:
        windows = token_windows(source, list(dataset_texts(*ppl_set)), seq_len, max_tokens)
    exports: list[Artifact] = []
    with registry.staging() as f16_dir:
        say("converting to GGUF f16 (llama.cpp converter)")
        f16 = convert_f16(source, f16_dir / "model-f16.gguf", f16_dir / "convert.log")
        checks = {"f16": check_gguf(f16, "f16", prompt_ids, reference, windows)}
        for quant in quants:
            with registry.staging() as q_dir:
                say(f"quantizing to {quant}")
                path = quantize(f16, q_dir / f"model-{quant}.gguf", quant)
                checks[quant] = check_gguf(path, quant, prompt_ids, reference, windows)
                exports.append(_register(registry, model, q_dir, quant, checks[quant].to_dict(), key))
        exports.insert(0, _register(registry, model, f16_dir, "f16", checks["f16"].to_dict(), key))
    registry.add_metrics(model.id, {"export": {q: c.to_dict() for q, c in checks.items()}})
    return exports, False


def _register(registry: Registry, model: Artifact, staged, quant: str, check: dict, key: str) -> Artifact:
    return registry.register(
        "export", f"{model.name}-{quant}", staged=staged, tier=model.tier, format="gguf",
        parents=[(model.id, "parent")], metrics=check,
        meta={"file": f"model-{quant}.gguf", "quant": quant, "export_key": key},
    )


def best_export(registry: Registry, model: Artifact, tolerance: float = 0.05):
    """The export a server should load for `model`: the smallest file whose measured perplexity is
    within `tolerance` of the f16 file's (q4_k_m costs a 270M model ~30 %, so it is not a given),
    falling back to size order q4_k_m, q8_0, f16 when no perplexity was measured. None if no export."""
    exports = [a for a in registry.children(model.id) if a.kind == "export" and (a.path / a.meta["file"]).exists()]
    if not exports:
        return None
    reference = next((a.metrics.get("ppl") for a in exports if a.meta.get("quant") == "f16"), None)
    if reference:
        good = [a for a in exports if a.metrics.get("ppl") and a.metrics["ppl"] <= reference * (1 + tolerance)]
        if good:
            return min(good, key=lambda a: a.metrics.get("size_mb") or float("inf"))
    order = {"q4_k_m": 0, "q8_0": 1, "f16": 2}
    return min(exports, key=lambda a: order.get(a.meta.get("quant"), 3))
