"""Causal self-attention for CPU training in bf16 at short sequences, as batched matmuls.

torch's CPU flash-attention kernel (what `sdpa` runs for a causal batch without padding) was about a fifth
of a SmolLM2 step here: seq 256, 9 heads of 64, its forward + backward took 28 ms per layer on one core.
At these lengths the whole (queries x keys) score matrix is small (seq 256: 0.5 MB per head in bf16), so
plain batched matmuls with a kept softmax do the same work faster: 16 ms per layer, measured the same way.
- the query heads that share a key/value head (GQA) are stacked into one matmul against it, so keys and
  values are never repeated;
- the causal mask is added by the score matmul itself (`baddbmm` onto a kept -inf triangle);
- backward uses the kept probabilities: dS = P * (dP - rowsum(dP * P)) in ATen's fused softmax-backward
  kernel, then two matmuls each for the query and key gradients and one for the values.
Same outputs and gradients as `sdpa` within bf16 rounding (tests/train/test_attention.py). The
probabilities are kept for backward (batch x heads x seq^2 bf16: 4.7 MB per SmolLM2 layer at seq 256),
so sequences over `MAX_SEQ`, padding or other masks, dropout, decoding and inference go to `sdpa` as before.
"""

from __future__ import annotations

from functools import cache

NAME = "wattlm_causal_bmm"
MAX_SEQ = 1024  # (heads x seq^2) bf16 kept per layer: 18 MB per sequence at 1024 with 9 heads


def use_bmm_attention(model) -> bool:
    """Route `model`'s attention through `attention()` (a per-model setting: other models keep theirs).

    Only models on transformers' `sdpa` path change: masks are still made by sdpa's mask function, so any
    call that needs a mask reaches `sdpa` unchanged. Returns whether the model changed."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    from wattlm.shared.lm import unwrap_model

    config = unwrap_model(model).config
    if config._attn_implementation != "sdpa":
        return False
    AttentionInterface.register(NAME, attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    config._attn_implementation = NAME
    return True


def restore_attention(model) -> None:
    """Back to `sdpa` (before saving, so the saved config names a standard implementation)."""
    from wattlm.shared.lm import unwrap_model

    config = unwrap_model(model).config
    if config._attn_implementation == NAME:
        config._attn_implementation = "sdpa"


def attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling: float | None = None,
              is_causal: bool | None = None, **kwargs):
    """transformers' attention-function signature: query (batch, heads, seq, dim), key/value (batch, kv heads,
    seq, dim) -> ((batch, seq, heads, dim), None)."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    batch, heads, seq, dim = query.shape
    kv_heads = key.shape[1]
    lean = (attention_mask is None and not dropout and is_causal is not False and getattr(module, "is_causal", True)
            and kwargs.get("softcap") is None and kwargs.get("position_bias") is None
            and 1 < seq <= MAX_SEQ and key.shape[2] == seq and value.shape[-1] == dim and heads % kv_heads == 0
            and query.device.type == "cpu" and torch.is_grad_enabled()
            and torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16)
    if not lean:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    dtype = torch.bfloat16
    scale = scaling if scaling is not None else dim**-0.5
    out = _function().apply(query.to(dtype), key.to(dtype), value.to(dtype), scale)  # (batch, heads, seq, dim)
    return out.transpose(1, 2).contiguous(), None


@cache
def _causal_mask(rows: int, seq: int, dtype, device_type: str):
    """(rows, seq): 0 on and below the diagonal of each stacked (seq, seq) block, -inf above."""
    import torch

    block = torch.full((seq, seq), float("-inf"), dtype=dtype, device=device_type).triu(1)
    return block.repeat(rows // seq, 1)


@cache
def _function():
    import torch

    class CausalAttention(torch.autograd.Function):
        @staticmethod
        def forward(ctx, q, k, v, scale: float):
            batch, heads, seq, dim = q.shape
            kv_heads = k.shape[1]
            group = heads // kv_heads
            # (batch * kv heads, group * seq, dim): the query heads of one key/value head stacked
            qg = q.reshape(batch * kv_heads, group * seq, dim)
            kg, vg = k.reshape(batch * kv_heads, seq, dim), v.reshape(batch * kv_heads, seq, dim)
            mask = _causal_mask(group * seq, seq, q.dtype, q.device.type)
            with torch.autocast("cpu", enabled=False):
                scores = torch.baddbmm(mask, qg, kg.transpose(1, 2), alpha=scale)  # (b*kv, g*seq, seq)
                probs = torch.softmax(scores, dim=-1)  # fp32 inside, rounded once
                out = torch.bmm(probs, vg)  # (b*kv, g*seq, dim)
            ctx.save_for_backward(qg, kg, vg, probs)
            ctx.scale, ctx.shapes = scale, (q.shape, k.shape)
            return out.view(q.shape)

        @staticmethod
        def backward(ctx, grad_out):
            qg, kg, vg, probs = ctx.saved_tensors
            q_shape, k_shape = ctx.shapes
            with torch.autocast("cpu", enabled=False):
                go = grad_out.to(qg.dtype).reshape(qg.shape)
                grad_v = torch.bmm(probs.transpose(1, 2), go)  # (b*kv, seq, dim)
                grad_probs = torch.bmm(go, vg.transpose(1, 2))  # (b*kv, g*seq, seq)
                grad_scores = torch.ops.aten._softmax_backward_data(grad_probs, probs, -1, probs.dtype)
                grad_q = torch.bmm(grad_scores, kg).mul_(ctx.scale)
                grad_k = torch.bmm(grad_scores.transpose(1, 2), qg).mul_(ctx.scale)
            return grad_q.view(q_shape), grad_k.view(k_shape), grad_v.view(k_shape), None

    return CausalAttention
