"""A smaller student made from its teacher: keep some of the teacher's transformer layers.

Logit distillation needs a student and a teacher that share a vocabulary, and our packaged models do
not share one. Taking a subset of the teacher's own layers gives such a student with every other weight
(embeddings, norms, head) already trained: DistilBERT initialised its 6-layer student from one layer in
two of BERT's 12 (Sanh et al., 2019), and the "unreasonable ineffectiveness of the deeper layers" study
(Gromov et al., 2024) shows how much of a decoder survives dropping layers before any healing training.
Distillation (`train --method distill` with the parent as teacher) then heals the gap.

The kept layers are spread evenly and always include the first and the last, which carry the most
(the first turns embeddings into features, the last into next-token logits). Per-layer settings in the
config (Gemma 3's sliding/full attention pattern in `layer_types`) are cut the same way.
"""

from __future__ import annotations

from wattlm.cache import fingerprint
from wattlm.errors import WattError
from wattlm.registry import Artifact, Registry


def spread_layers(total: int, keep: int) -> list[int]:
    """`keep` layer indices out of `total`, evenly spaced, first and last included."""
    if not 1 <= keep <= total:
        raise WattError(f"--layers must be between 1 and the model's {total} layers, got {keep}")
    if keep == 1:
        return [total - 1]
    return sorted({round(i * (total - 1) / (keep - 1)) for i in range(keep)})


def shrink_model(registry: Registry, parent: Artifact, keep: int, name: str, progress=None) -> tuple[Artifact, bool]:
    """Register a model made of `keep` of `parent`'s layers; (artifact, reused from cache)."""
    from wattlm.models.hf import load_causal_lm, load_tokenizer
    from wattlm.models.store import hf_dir

    source = hf_dir(registry, parent)
    model = load_causal_lm(source)
    config = model.config
    total = config.num_hidden_layers
    kept = spread_layers(total, keep)
    key = fingerprint("shrink", parent.id, kept)
    cached = registry.find(key)
    if cached is not None:
        return cached, True
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
    with registry.staging() as staged:
        model.save_pretrained(staged)
        load_tokenizer(source).save_pretrained(staged)
        art = registry.register(
            "model", name, staged=staged, tier=parent.tier, format="hf", parents=[(parent.id, "init")],
            metrics={"layers": len(kept), "parent_layers": total, "parameters": params, "parent_parameters": before},
            meta={"shrunk_from": parent.id, "kept_layers": kept}, cache_key=key,
        )
    if progress:
        progress(f"{len(kept)} of {total} layers ({kept}); {params / 1e6:.1f}M of {before / 1e6:.1f}M parameters")
    return art, False
