"""Sibling LoRA layers that read the same input, computed as one: q/k/v of attention, gate/up of the MLP.

A decoder layer calls `q_proj(x)`, `k_proj(x)`, `v_proj(x)` on one tensor, and `gate_proj(x)`, `up_proj(x)`
on another. Each lean LoRA layer (`train/lean_lora.py`) would cast x, run its base matmul, draw its dropout
mask, run A and then B: per group that is three thin matmuls where one wide one does (SmolLM2's k and v
are 192 columns wide), and three times the small-op overhead, forward and backward. Here the first
member called computes every member's output at once and keeps the others' for their own calls:
- one base matmul against the members' bf16 weights concatenated (cached like a single layer's);
- one dropout mask for the group and the A products as one matmul against the members' A stacked;
- the B products and the base added by one `addmm` with the members' B blocks on a block diagonal.
The outputs are column slices of one tensor (`split`: a single backward node). The kept outputs are
used only by a call with the very same input tensor (same object, unchanged): anything else computes
afresh. Same numbers as the separate layers up to bf16 rounding (tests/train/test_lora_siblings.py).
"""

from __future__ import annotations

# Names of sibling projections fed the same input in the decoder layers of Llama, Gemma 3, Qwen 2/3, Mistral.
SIBLINGS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


class SiblingGroup:
    def __init__(self, members: list):
        self.members = members
        self.kept = None  # (input, its version, {member index: output}) until each sibling took its output

    def applies(self, adapter) -> bool:
        """Every member runs the lean path with this one adapter (none merged, disabled or trained in full)."""
        return all(list(m.active_adapters) == [adapter] and adapter in m.lora_A and not m.disable_adapters
                   and not m.merged and not m.base_layer.weight.requires_grad for m in self.members)

    def output(self, layer, x, adapter):
        """`layer`'s output for `x`: from the group's last pass over the same `x`, or a new pass."""
        index = self.members.index(layer)
        kept = self.kept
        if kept is not None and kept[0] is x and kept[1] == x._version and index in kept[2]:
            out = kept[2].pop(index)
            if not kept[2]:
                self.kept = None
            return out
        outs = self._forward(x, adapter)
        self.kept = (x, x._version, {i: out for i, out in enumerate(outs) if i != index})
        return outs[index]

    def _forward(self, x, adapter) -> list:
        import torch
        import torch.nn.functional as F

        from wattlm.train.lean_lora import _dropout

        first = self.members[0]
        dtype = first._wattlm_dtype
        weight, bias = self._base_weight(dtype)
        flat = x.reshape(-1, x.size(-1)).to(dtype)  # (tokens, in)
        base = F.linear(flat, weight, bias)  # (tokens, sum of outs)
        # One dropout mask for the group: each adapter still sees its input dropped at rate p, but the
        # siblings share the draw (peft draws one per layer). Separate masks cost a (siblings x tokens x in)
        # product forward and backward: ~8 % of a SmolLM2 step, measured.
        dropped, keep_scale = _dropout(flat, first.lora_dropout[adapter])
        low = F.linear(dropped, torch.cat([m.lora_A[adapter].weight for m in self.members]))  # (tokens, n * r)
        scale = first.scaling[adapter]
        b = torch.block_diag(*[m.lora_B[adapter].weight * (m.scaling[adapter] / scale)
                               if m.scaling[adapter] != scale else m.lora_B[adapter].weight
                               for m in self.members])  # (sum of outs, n * r)
        out = torch.addmm(base, low, b.T, alpha=scale * keep_scale)
        sizes = [m.base_layer.out_features for m in self.members]
        return [part.view(*x.shape[:-1], part.size(-1)) for part in out.split(sizes, dim=-1)]

    def _base_weight(self, dtype):
        """The members' frozen base weights (and biases) concatenated in `dtype`, cast once while unchanged."""
        import torch

        bases = [m.base_layer for m in self.members]
        stamp = tuple((b.weight.data_ptr(), b.weight._version) for b in bases)
        cached = getattr(self, "_cached", None)
        if cached is None or cached[0] != stamp:
            weight = torch.cat([b.weight.detach() for b in bases]).to(dtype)
            bias = None
            if any(b.bias is not None for b in bases):
                bias = torch.cat([b.bias.detach() if b.bias is not None else b.weight.new_zeros(b.out_features)
                                  for b in bases]).to(dtype)
            cached = self._cached = (stamp, weight, bias)
        return cached[1], cached[2]


def group_siblings(model) -> int:
    """Join the lean LoRA layers of `model` named in `SIBLINGS` (same parent, same input width, rank,
    dropout) into groups; returns the number of groups. Layers outside a group work as before."""
    groups = 0
    for parent in model.modules():
        for names in SIBLINGS:
            members = [getattr(parent, name, None) for name in names]
            if not all(getattr(m, "_wattlm_dtype", None) is not None for m in members):
                continue
            if len({_shape_key(m) for m in members}) != 1:
                continue
            group = SiblingGroup(members)
            for member in members:
                member._wattlm_group = group
            groups += 1
    return groups


def _shape_key(layer) -> tuple:
    adapter = next(iter(layer.lora_A))
    dropout = layer.lora_dropout[adapter]
    return (layer.base_layer.in_features, layer.lora_A[adapter].weight.shape, adapter, layer._wattlm_dtype,
            getattr(dropout, "p", 0.0), layer.base_layer.weight.dtype, layer.base_layer.weight.device)
