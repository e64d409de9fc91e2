"""A smaller student made from its teacher: keep some of the teacher's transformer layers.

Logit distillation needs a student and a teacher that share a vocabulary, and our packaged models do
not share one. Taking a subset of the teacher's own layers gives such a student with every other weight
(embeddings, norms, head) already trained; distillation (`train --method distill` with the parent as
teacher) then heals the gap. Which layers go matters more than how many:

- With calibration text (`--data`), one contiguous block is dropped: the block whose input and output
  hidden states are closest in angle, i.e. the layers that change the residual stream least (Gromov et
  al., 2024, "The Unreasonable Ineffectiveness of the Deeper Layers"). Measured on the power-grid
  industry Gemma 3 270M (18 layers), held-out perplexity 52 before healing: dropping the best block of
  2 layers gave 108, of 4 gave 1560, of 6 gave 3e9.
- Without it, the kept layers are spread evenly, first and last included (DistilBERT's one-in-two,
  Sanh et al., 2019). This suits deep models; on that Gemma, keeping 12 of 18 evenly gave 1.7e10.

Per-layer settings in the config (Gemma 3's sliding/full attention pattern in `layer_types`) are cut
the same way as the layers.
"""

from __future__ import annotations

from wattlm.cache import content_key, fingerprint
from wattlm.errors import WattError
from wattlm.registry import Artifact, Registry


def spread_layers(total: int, keep: int) -> list[int]:
    """`keep` layer indices out of `total`, evenly spaced, first and last included."""
    if not 1 <= keep <= total:
        raise WattError(f"--layers must be between 1 and the model's {total} layers, got {keep}")
    if keep == 1:
        return [total - 1]
    return sorted({round(i * (total - 1) / (keep - 1)) for i in range(keep)})


def block_to_drop(model, input_ids, drop: int) -> int:
    """First layer of the `drop` consecutive layers whose removal changes the hidden states least: the
    smallest mean angular distance between the block's input and output over `input_ids` (batch, seq)."""
    import math

    import torch

    with torch.no_grad():
        states = model(input_ids=input_ids, output_hidden_states=True).hidden_states  # layers + 1 tensors
    total = len(states) - 1

    def angle(a, b) -> float:
        cos = torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1).clamp(-1.0, 1.0)
        return (torch.arccos(cos) / math.pi).mean().item()

    # The last layer stays: it maps the stream onto the vocabulary.
    distances = [angle(states[first], states[first + drop]) for first in range(total - drop)]
    return min(range(len(distances)), key=distances.__getitem__)


def shrink_model(registry: Registry, parent: Artifact, keep: int, name: str, calibration=None,
                 progress=None) -> tuple[Artifact, bool]:
    """Register a model made of `keep` of `parent`'s layers; (artifact, reused from cache).

    `calibration`: token ids (batch, seq) to choose the dropped block by; None spreads the kept layers."""
    from wattlm.models.hf import load_causal_lm, load_tokenizer
    from wattlm.models.store import hf_dir

    source = hf_dir(registry, parent)
    model = load_causal_lm(source)
    config = model.config
    total = config.num_hidden_layers
    if calibration is None:
        kept = spread_layers(total, keep)
    else:
        spread_layers(total, keep)  # the same range check
        if keep == total:
            kept = list(range(total))
        else:
            first = block_to_drop(model, calibration, total - keep)
            kept = [i for i in range(total) if not first <= i < first + total - keep]
    key = fingerprint("shrink", content_key(parent), kept)

    def produce(staged) -> dict:
        import torch

        before = sum(p.numel() for p in model.parameters())
        backbone = model.get_decoder()
        backbone.layers = torch.nn.ModuleList([backbone.layers[i] for i in kept])
        for new_index, layer in enumerate(backbone.layers):
            attention = getattr(layer, "self_attn", None)
            if attention is not None and hasattr(attention, "layer_idx"):
                attention.layer_idx = new_index  # the KV cache is indexed by position in the stack
        config.num_hidden_layers = len(kept)
        for field in ("layer_types",):  # per-layer lists in the config follow the kept layers
            values = getattr(config, field, None)
            if isinstance(values, list) and len(values) == total:
                setattr(config, field, [values[i] for i in kept])
        params = sum(p.numel() for p in model.parameters())
        model.save_pretrained(staged)
        load_tokenizer(source).save_pretrained(staged)
        if progress:
            progress(f"{len(kept)} of {total} layers ({kept}); {params / 1e6:.1f}M of {before / 1e6:.1f}M parameters")
        return dict(
            kind="model", name=name, tier=parent.tier, format="hf", parents=[(parent.id, "init")],
            metrics={"layers": len(kept), "parent_layers": total, "parameters": params, "parent_parameters": before},
            meta={"shrunk_from": parent.id, "kept_layers": kept,
                  "selection": "even" if calibration is None else "least-change block"},
        )

    return registry.find_or_produce(key, produce)


def calibration_ids(registry: Registry, model: Artifact, dataset: Artifact, sequences: int = 4, seq_len: int = 256):
    """Up to `sequences` packed windows of `dataset`'s train texts, tokenized for `model`."""
    from wattlm.datasets import dataset_texts
    from wattlm.models.hf import load_tokenizer
    from wattlm.models.store import hf_dir
    from wattlm.shared.lm import pack, tokenize_stream

    tokenizer = load_tokenizer(hf_dir(registry, model))
    ids = pack(tokenize_stream(tokenizer, dataset_texts(dataset, "train")), seq_len)[:sequences]
    if len(ids) == 0:
        raise WattError(f"dataset {dataset.name} ({dataset.id}) has under {seq_len} tokens of train text to calibrate on")
    return ids
