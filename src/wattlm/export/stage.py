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
    from wattlm.export.gguf import check_gguf, convert_f16, hf_greedy, quantize, token_windows
    from wattlm.textsets import dataset_texts

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
