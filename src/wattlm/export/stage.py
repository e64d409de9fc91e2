"""`watt export` as a registry step: a model -> GGUF exports (f16 + quantized), each checked."""

from __future__ import annotations

from pathlib import Path

from wattlm.cache import content_key, fingerprint
from wattlm.models.store import hf_dir
from wattlm.registry import Artifact, Registry


def export_key(model: Artifact, quant: str, settings: dict, ppl_set: tuple[Artifact, str] | None) -> str:
    """One GGUF file's key: the model's content, the quant, the checks' settings and the text they read."""
    text = (content_key(ppl_set[0]), ppl_set[1]) if ppl_set else None
    return fingerprint("export", content_key(model), quant, settings, text)


def export_model(
    registry: Registry, model: Artifact, quants: list[str], *, check_prompt: str = "The substation",
    check_tokens: int = 16, progress=None, ppl_set: tuple[Artifact, str] | None = None, seq_len: int = 512,
    max_tokens: int | None = 20000,
) -> tuple[list[Artifact], bool]:
    """Export `model` to GGUF f16 plus `quants`; returns (exports, reused).

    Each file is registered as it is finished, under its own key: a rerun after a crash reuses the f16
    file and every finished quantization (each quant is made from the registered f16 file).
    `ppl_set` (a dataset and split, e.g. the domain held-out) adds each file's llama.cpp perplexity to
    the table, with the windows `watt eval` uses, so quantization loss is read against transformers.
    """
    from wattlm.datasets import dataset_texts
    from wattlm.export.gguf import check_gguf, convert_f16, hf_greedy, quantize, token_windows

    say = progress or (lambda message: None)
    settings = {"check_prompt": check_prompt, "check_tokens": check_tokens, "seq_len": seq_len,
                "max_tokens": max_tokens}
    references: dict = {}

    def reference() -> tuple[list[int], list[int], list[list[int]] | None]:
        """The transformers side of the checks, computed once and only when a file must be made."""
        if not references:
            source = hf_dir(registry, model)
            say(f"transformers greedy reference ({check_tokens} tokens)")
            references["greedy"] = hf_greedy(source, check_prompt, check_tokens)
            references["windows"] = (token_windows(source, list(dataset_texts(*ppl_set)), seq_len, max_tokens)
                                     if ppl_set is not None else None)
        return (*references["greedy"], references["windows"])

    def make(quant: str, f16: Path | None):
        def produce(staged: Path) -> dict:
            prompt_ids, greedy, windows = reference()
            target = staged / f"model-{quant}.gguf"
            if f16 is None:
                say("converting to GGUF f16 (llama.cpp converter)")
                path = convert_f16(hf_dir(registry, model), target, staged / "convert.log")
            else:
                say(f"quantizing to {quant}")
                path = quantize(f16, target, quant)
            check = check_gguf(path, quant, prompt_ids, greedy, windows)
            return dict(kind="export", name=f"{model.name}-{quant}", tier=model.tier, format="gguf",
                        parents=[(model.id, "parent")], metrics=check.to_dict(),
                        meta={"file": target.name, "quant": quant})
        return produce

    f16, f16_reused = registry.find_or_produce(export_key(model, "f16", settings, ppl_set), make("f16", None))
    exports, reused = [f16], f16_reused
    for quant in quants:
        export, quant_reused = registry.find_or_produce(export_key(model, quant, settings, ppl_set),
                                                        make(quant, f16.path / f16.meta["file"]))
        exports.append(export)
        reused &= quant_reused
    if not reused:
        registry.add_metrics(model.id, {"export": {a.meta["quant"]: a.metrics for a in exports}})
    return exports, reused
