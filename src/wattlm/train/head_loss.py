"""The training loss through the output head: chunked, fused with its gradient, in bf16 where autocast is.

`shared/lm.py::linear_cross_entropy` is the reference (evaluation uses its no-grad path). This is the
training variant, written for the CPU profile of a Gemma 3 270M step, whose 262k-token head is about
half of the step's FLOPs:
- the head weight is cast to bf16 once and kept while it does not change (LoRA freezes it, and Gemma
  ties it to the 170M-parameter embedding: re-casting it cost a 1 GB read and write per step);
- the logits stay bf16 (c x 262k); the gradient softmax(logits) - one_hot comes from ATen's row-wise
  softmax kernel straight into bf16, instead of fp32 logits and five full-size elementwise passes;
- the log-sum-exp that the loss needs (fp32, exact as before) is taken eight rows at a time, so its
  fp32 temporaries (8 x 262k x 4 B = 8 MB) stay in cache;
- ignored positions (-100) are masked on the (c, d) results, not on the (c, vocab) gradient.
Measured on one core, 256 positions x 262k vocabulary: the elementwise part went from 408 ms to 142 ms
beside the 257 ms logits matmul; the summed loss is bit-identical, the gradient within one bf16 rounding.
"""

from __future__ import annotations

import threading
from functools import cache

ROW_BLOCK = 8  # rows per fp32 log-sum-exp block: 8 x 262k fp32 = 8 MB, cache-sized


def low_precision_weight(head, dtype):
    """`head.weight` in `dtype`, cast once while the weight stays the same (frozen: LoRA, or a tied embedding).

    A trainable weight changes every step, so it is cast every time (as autocast does)."""
    weight = head.weight
    if weight.dtype == dtype or weight.requires_grad:
        return weight.to(dtype)
    cached = getattr(head, "_wattlm_lowp", None)
    stamp = (weight.data_ptr(), weight._version, dtype)
    if cached is None or cached[0] != stamp:
        cached = (stamp, weight.detach().to(dtype))
        head._wattlm_lowp = cached
    return cached[1]


@cache
def _function():
    """The autograd Function, defined on first use so that importing this module does not import torch."""
    import torch

    class HeadCrossEntropy(torch.autograd.Function):
        """Summed cross-entropy of (hidden @ weight.T) vs targets; gradients computed during forward."""

        @staticmethod
        def forward(ctx, hidden, weight, weight_lowp, targets, chunk: int, softcap: float | None):
            # hidden: (n, d), weight: (vocab, d) (for its gradient), weight_lowp: the same in the compute
            # dtype, targets: (n,) with -100 = ignored
            need_hidden, need_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
            dtype = weight_lowp.dtype
            grad_hidden = torch.zeros_like(hidden) if need_hidden else None
            grad_weight = torch.zeros_like(weight, dtype=torch.float32) if need_weight else None
            total = torch.zeros((), dtype=torch.float32, device=hidden.device)
            # Autocast off on the inputs' device (cpu or cuda): the chunks pick their dtype themselves.
            with torch.autocast(hidden.device.type, enabled=False):
                for start in range(0, hidden.size(0), chunk):
                    t = targets[start : start + chunk]  # (c,)
                    valid = t != -100  # (c,)
                    h = hidden[start : start + chunk].to(dtype)  # (c, d)
                    logits = torch.mm(h, weight_lowp.T, out=_scratch(weight_lowp, h.size(0)))  # (c, vocab)
                    rows = torch.arange(t.numel(), device=t.device)
                    safe_t = t.clamp(min=0)
                    if softcap:  # Gemma 2 style soft-capping: fp32 path (no packaged model uses it)
                        loss, grad_logits = _softcapped(logits.float(), safe_t, rows, softcap)
                    else:
                        loss, grad_logits = _plain(logits, safe_t, rows)
                    total += loss[valid].sum()
                    if not (need_hidden or need_weight):
                        continue
                    g = grad_logits.to(dtype)  # no copy on the plain path: it is already in the compute dtype
                    if need_hidden:
                        grad_hidden[start : start + chunk] = ((g @ weight_lowp) * valid[:, None]).to(hidden.dtype)
                    if need_weight:
                        grad_weight += (g.T @ (h * valid[:, None].to(dtype))).float()  # (vocab, d)
            ctx.save_for_backward(grad_hidden, grad_weight)
            ctx.has = (need_hidden, need_weight)
            ctx.weight_dtype = weight.dtype
            return total

        @staticmethod
        def backward(ctx, grad_total):
            grad_hidden, grad_weight = ctx.saved_tensors
            need_hidden, need_weight = ctx.has
            return (
                grad_hidden * grad_total if need_hidden else None,
                (grad_weight * grad_total).to(ctx.weight_dtype) if need_weight else None,
                None, None, None, None,
            )

    return HeadCrossEntropy


def _scratch(weight, rows: int):
    """A (rows, vocab) logits buffer kept between steps: a fresh 0.5 GB tensor per chunk (Gemma, 1024 rows)
    is a fresh mmap whose pages the kernel faults in and zeroes every time (measured ~15 % of the head)."""
    import torch

    key = (weight.size(0), weight.dtype, weight.device)
    buffer = getattr(_buffers, "logits", None)
    if buffer is None or buffer[0] != key or buffer[1].size(0) < rows:
        _buffers.logits = None  # free the old one before allocating
        _buffers.logits = buffer = (key, torch.empty(rows, weight.size(0), dtype=weight.dtype, device=weight.device))
    return buffer[1][:rows]


_buffers = threading.local()  # one per thread: two trainings in one process (console jobs) never share it


def release_buffers() -> None:
    """Free this thread's logits buffer (the loop calls this when training ends)."""
    _buffers.logits = None


def _plain(logits, targets, rows):
    """Per-row loss (fp32) and d loss / d logits = softmax - one_hot, in the logits' dtype, in place."""
    import torch

    lse = torch.empty(logits.size(0), dtype=torch.float32, device=logits.device)  # (c,)
    for start in range(0, logits.size(0), ROW_BLOCK):
        lse[start : start + ROW_BLOCK] = torch.logsumexp(logits[start : start + ROW_BLOCK].float(), dim=-1)
    picked = logits.gather(1, targets[:, None]).squeeze(1).float() - lse  # (c,) log p(target)
    # (c, vocab) softmax written over the logits: ATen's row-wise kernel (fp32 inside, rounded once) reads
    # each row before writing it, so in place gives the same values (tests/train/test_head_loss.py).
    grad = torch.ops.aten._softmax.out(logits, -1, False, out=logits)
    # At the target, p - 1 from the exact fp32 log-probability, rounded once like every other entry.
    grad[rows, targets] = (picked.exp() - 1.0).to(grad.dtype)
    return -picked, grad


def _softcapped(logits, targets, rows, softcap: float):
    import torch

    capped = torch.tanh(logits / softcap)
    logits = capped * softcap
    lse = torch.logsumexp(logits, dim=-1)  # (c,)
    loss = lse - logits.gather(1, targets[:, None]).squeeze(1)
    grad = logits.sub_(lse[:, None]).exp_()
    grad[rows, targets] -= 1.0
    return loss, grad.mul_(1.0 - capped * capped)


def head_cross_entropy(hidden, head, targets, chunk: int = 1024, softcap: float | None = None):
    """Summed next-token NLL of `hidden @ head.weight.T` vs `targets` (-100 ignored), with gradients for
    `hidden` and, when it trains, the head weight; no full logits tensor exists."""
    from wattlm.shared.lm import compute_dtype

    lowp = low_precision_weight(head, compute_dtype(hidden))
    return _function().apply(hidden, head.weight, lowp, targets, chunk, softcap)


def causal_lm_loss(model, input_ids, chunk: int = 1024, labels=None) -> tuple:
    """(summed next-token NLL, scored positions) of a batch: `shared.lm.causal_lm_nll` for training.

    input_ids: (batch, seq); `labels` (same shape, -100 = not scored) replaces input_ids as the targets.
    Without gradients it is the shared function itself (evaluation's numbers)."""
    import torch
    from torch.profiler import record_function

    from wattlm.shared.lm import backbone_and_head, causal_lm_nll

    if not torch.is_grad_enabled():
        return causal_lm_nll(model, input_ids, chunk=chunk, labels=labels)
    backbone, head, softcap = backbone_and_head(model)
    with record_function("train.forward"):
        # use_cache=False: the models' configs default to a KV cache, which training would fill and drop
        hidden = backbone(input_ids=input_ids, use_cache=False).last_hidden_state  # (batch, seq, dim)
    with record_function("train.loss"):
        hidden = hidden[:, :-1].reshape(-1, hidden.size(-1))  # (batch*(seq-1), dim)
        targets = (input_ids if labels is None else labels)[:, 1:].reshape(-1)  # (batch*(seq-1),)
        if labels is not None:
            # Only scored positions go through the head (an SFT batch scores its answers only).
            scored = targets != -100
            hidden, targets = hidden[scored], targets[scored]
        return head_cross_entropy(hidden, head, targets, chunk, softcap), targets.numel()
