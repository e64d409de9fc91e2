"""A leaner forward for peft's LoRA linear layers under CPU bf16 autocast.

peft's `lora.Linear.forward` computes base(x) + B(A(dropout(x))) * scale. Under autocast that costs,
per layer and step: a cast of the frozen fp32 base weight to bf16 (autocast caches casts of trainable
leaves only), a cast of x up to fp32 (peft matches x to A's dtype) and back down for A's matmul,
dropout on fp32 x, and two elementwise passes for `* scale` and `+`. Here the base weight is cast to
bf16 once and kept, x is cast to bf16 once and shared by both paths, and the low-rank product is added
by the matmul itself (`addmm(base, A_out, B.T, alpha=scale)`). The fp32 base weight is untouched, so
merging and saving work as before. Same numbers as peft's forward up to bf16 rounding order
(tests/train/test_lean_lora.py).
"""

from __future__ import annotations

import types


def lean_lora(model, dtype) -> int:
    """Give every plain peft LoRA linear layer of `model` the lean forward for autocast in `dtype`.

    Layers with a LoRA variant (DoRA, ...), several adapters or a non-Linear base keep peft's forward.
    Returns the number of layers changed."""
    import torch
    from peft.tuners.lora import Linear as LoraLinear

    changed = 0
    for module in model.modules():
        if type(module) is not LoraLinear or module.lora_variant or len(module.lora_A) != 1:
            continue
        if type(module.base_layer) is not torch.nn.Linear:
            continue
        module._wattlm_peft_forward = module.forward
        module._wattlm_dtype = dtype
        module.forward = types.MethodType(_lean_forward, module)
        changed += 1
    return changed


def _base_weight(layer, dtype):
    """The frozen base weight (and bias) in `dtype`, cast once while the fp32 weight is unchanged."""
    base = layer.base_layer
    stamp = (base.weight.data_ptr(), base.weight._version)
    cached = getattr(layer, "_wattlm_base", None)
    if cached is None or cached[0] != stamp:
        bias = None if base.bias is None else base.bias.detach().to(dtype)
        cached = (stamp, base.weight.detach().to(dtype), bias)
        layer._wattlm_base = cached
    return cached[1], cached[2]


def _lean_forward(self, x, *args, **kwargs):
    import torch
    import torch.nn.functional as F

    dtype = self._wattlm_dtype
    adapter = self.active_adapters[0] if len(self.active_adapters) == 1 else None
    if (args or kwargs or self.disable_adapters or self.merged or adapter not in self.lora_A
            or self.base_layer.weight.requires_grad
            or not torch.is_autocast_enabled("cpu") or torch.get_autocast_dtype("cpu") != dtype):
        return self._wattlm_peft_forward(x, *args, **kwargs)
    group = getattr(self, "_wattlm_group", None)
    if group is not None and group.applies(adapter):  # q/k/v or gate/up computed together: train/lora_siblings.py
        return group.output(self, x, adapter)
    weight, bias = _base_weight(self, dtype)
    flat = x.reshape(-1, x.size(-1)).to(dtype)  # (tokens, in): one cast, shared by both paths
    base = F.linear(flat, weight, bias)  # (tokens, out)
    dropped, keep_scale = _dropout(flat, self.lora_dropout[adapter])
    low = F.linear(dropped, self.lora_A[adapter].weight)  # (tokens, r)
    # base + scale * low @ B.T in one matmul call (autocast casts B once per step: it is a trainable leaf);
    # dropout's 1 / (1 - p) rides on the same scale instead of a pass over the input
    out = torch.addmm(base, low, self.lora_B[adapter].weight.T, alpha=self.scaling[adapter] * keep_scale)
    return out.view(*x.shape[:-1], out.size(-1))


def _dropout(x, dropout) -> tuple:
    """(x with dropped entries zeroed, the 1 / (1 - p) to scale the result by)."""
    keep, scale = keep_mask(x.shape, dropout, x.device)
    return (x, scale) if keep is None else (x * keep, scale)


def keep_mask(shape, dropout, device) -> tuple:
    """(a bool mask of `shape` with P(True) = 1 - p, or None when `dropout` drops nothing; 1 / (1 - p)).

    `torch.nn.Dropout` draws one random float per entry (~4 ns each here: 8 % of a SmolLM2 step); this
    draws 64-bit words and compares their 16-bit quarters against p, four entries per draw, with p
    rounded to a multiple of 1/65536 (0.05 -> 0.050003) and the scale taken from that rounded p."""
    import math

    import torch

    p = dropout.p if isinstance(dropout, torch.nn.Dropout) and dropout.training else 0.0
    if p == 0.0:
        return None, 1.0
    n = math.prod(shape)
    cut = round(p * 65536)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(2**63), 2**63 - 1)
    keep = words.view(torch.int16)[:n].view(shape) >= cut - 32768  # P(keep) = 1 - cut / 65536
    return keep, 65536 / (65536 - cut)
