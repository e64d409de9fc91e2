"""`watt export` as a registry step: a model -> GGUF exports (f16 + quantized), each checked."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

from wattlm.cache import content_key, fingerprint
from wattlm.models.store import hf_dir
from wattlm.registry import Artifact, Registry
from wattlm.shared.timeline import timed


def export_key(model: Artifact, quant: str, settings: dict, ppl_set: tuple[Artifact, str] | None) -> str:
    """One GGUF file's key: the model's content, the quant, the checks' settings and the text they read."""
    text = (content_key(ppl_set[0]), ppl_set[1]) if ppl_set else None
    return fingerprint("export", content_key(model), quant, settings, text)


def export_model(
    registry: Registry, model: Artifact, quants: list[str], *, check_prompt: str = "The substation",
    check_tokens: int = 16, progress=None, ppl_set: tuple[Artifact, str] | None = None, seq_len: int = 512,
    max_tokens: int | None = 20000, loaded: Callable[[], tuple[object, object]] | None = None,
    checked: Collection[str] | None = None,
) -> tuple[list[Artifact], bool]:
    """Export `model` to GGUF f16 plus `quants`; returns (exports, reused).

    Each file is registered as it is finished, under its own key: a rerun after a crash reuses the f16
    file and every finished quantization (each quant is made from the registered f16 file).
    `ppl_set` (a dataset and split, e.g. the domain held-out) adds each file's llama.cpp perplexity to
    the table, with the windows `watt eval` uses, so quantization loss is read against transformers.
    `loaded` returns the model's transformers weights and tokenizer when the caller holds them already.
    `checked` names the quants that get the check (default: every file); the others are registered
    with their size only, and their key says so (a later checked export of the same quant is made anew).
    A recipe checks the quant it serves: the check reads 20k tokens through llama.cpp per file.
    """
    from wattlm.datasets import dataset_texts
    from wattlm.export.gguf import (
        check_gguf,
        convert_f16,
        hf_greedy,
        load_reference,
        quantize,
        token_windows,
        unchecked,
    )

    say = progress or (lambda message: None)
    settings = {"check_prompt": check_prompt, "check_tokens": check_tokens, "seq_len": seq_len,
                "max_tokens": max_tokens}
    references: dict = {}

    def is_checked(quant: str) -> bool:
        return checked is None or quant in checked

    def key(quant: str) -> str:
        if is_checked(quant):
            return export_key(model, quant, settings, ppl_set)
        return fingerprint("export", content_key(model), quant, "unchecked")

    def reference() -> tuple[list[int], list[int], list[list[int]] | None]:
        """The transformers side of the checks, computed once and only when a file must be made."""
        if not references:
            say(f"transformers greedy reference ({check_tokens} tokens)")
            with timed("transformers reference"):
                lm, tokenizer = loaded() if loaded is not None else load_reference(hf_dir(registry, model))
                references["greedy"] = hf_greedy(lm, tokenizer, check_prompt, check_tokens)
                references["windows"] = (token_windows(tokenizer, list(dataset_texts(*ppl_set)), seq_len, max_tokens)
                                         if ppl_set is not None else None)
        return (*references["greedy"], references["windows"])

    def make(quant: str, f16: Path | None):
        def produce(staged: Path) -> dict:
            target = staged / f"model-{quant}.gguf"
            if f16 is None:
                say("converting to GGUF f16 (llama.cpp converter)")
                with timed("convert f16"):
                    path = convert_f16(hf_dir(registry, model), target, staged / "convert.log")
            else:
                say(f"quantizing to {quant}")
                with timed(f"quantize {quant}"):
                    path = quantize(f16, target, quant)
            if is_checked(quant):
                prompt_ids, greedy, windows = reference()
                with timed(f"check {quant}"):
                    check = check_gguf(path, quant, prompt_ids, greedy, windows)
            else:
                check = unchecked(path, quant)
            return dict(kind="export", name=f"{model.name}-{quant}", tier=model.tier, format="gguf",
                        parents=[(model.id, "parent")], metrics=check.to_dict(),
                        meta={"file": target.name, "quant": quant})
        return produce

    f16, f16_reused = registry.find_or_produce(key("f16"), make("f16", None))
    exports, reused = [f16], f16_reused
    for quant in quants:
        export, quant_reused = registry.find_or_produce(key(quant), make(quant, f16.path / f16.meta["file"]))
        exports.append(export)
        reused &= quant_reused
    if not reused:
        registry.add_metrics(model.id, {"export": {a.meta["quant"]: a.metrics for a in exports}})
    return exports, reused
