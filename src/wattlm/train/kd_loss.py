"""Logit distillation loss, fused with the student's output projection and computed in position chunks.

The student learns the teacher's temperature-softened next-token distribution (Hinton et al. 2015):

    loss = kd_alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - kd_alpha) * CE(z_s, next token)

summed over scored positions. T^2 keeps the KL gradient on the scale of the CE gradient whatever T is.
As in `loss.py`, neither model's logits ever exist for the whole batch: each chunk of positions is
projected through both heads, its loss summed, and the gradient with respect to the student's hidden
states, d/dz_s = kd_alpha * T * (softmax(z_s/T) - softmax(z_t/T)) + (1 - kd_alpha) * (softmax(z_s) - onehot),
computed in the same pass. A chunk holds about four (chunk, vocab) fp32 buffers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wattlm.shared.lm import backbone_and_head, compute_dtype


def _rowdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise dot product of two (c, vocab) tensors without a (c, vocab) temporary: (c,)."""
    return torch.bmm(a.unsqueeze(1), b.unsqueeze(2)).view(-1)


def _cap(logits: torch.Tensor, softcap: float | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    if not softcap:
        return logits, None
    capped = torch.tanh(logits / softcap)
    return capped * softcap, capped


class _LinearDistill(torch.autograd.Function):
    """(weighted loss sum, KL sum, CE sum) over the scored positions; gradients computed in forward."""

    @staticmethod
    def forward(ctx, hidden, weight, teacher_hidden, teacher_weight, targets, chunk: int, vocab: int,
                temperature: float, alpha: float, softcaps: tuple, dtype: torch.dtype):
        # hidden: (n, d_s), weight: (V_s, d_s); teacher_hidden: (n, d_t), teacher_weight: (V_t, d_t);
        # targets: (n,) with -100 = not scored. Only the first `vocab` rows of each head are compared.
        need_hidden, need_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_hidden = torch.zeros_like(hidden) if need_hidden else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if need_weight else None
        w = weight[:vocab].to(dtype)  # (V, d_s)
        w_t = teacher_weight[:vocab].to(dtype)  # (V, d_t)
        student_cap, teacher_cap = softcaps
        t = temperature
        kl_total = torch.zeros((), dtype=torch.float32)
        ce_total = torch.zeros((), dtype=torch.float32)
        with torch.autocast("cpu", enabled=False), torch.no_grad():
            for start in range(0, hidden.size(0), chunk):
                target = targets[start : start + chunk]  # (c,)
                valid = (target != -100).float()  # (c,)
                if not valid.any():
                    continue
                h = hidden[start : start + chunk].to(dtype)  # (c, d_s)
                z_s, capped = _cap((h @ w.T).float(), student_cap)  # (c, V)
                z_t, _ = _cap((teacher_hidden[start : start + chunk].to(dtype) @ w_t.T).float(), teacher_cap)
                z_t /= t
                log_p_t = z_t.sub_(torch.logsumexp(z_t, dim=-1, keepdim=True))  # teacher log-probs at T, in place
                log_q_t = z_s / t  # student log-probs at T: (c, V)
                log_q_t -= torch.logsumexp(log_q_t, dim=-1, keepdim=True)
                p_t = log_p_t.exp()  # (c, V)
                kl_rows = _rowdot(p_t, log_p_t) - _rowdot(p_t, log_q_t)  # (c,)
                del log_p_t, z_t
                safe_target = target.clamp(min=0)
                lse = torch.logsumexp(z_s, dim=-1)  # (c,)
                ce_rows = lse - z_s.gather(1, safe_target[:, None]).squeeze(1)  # (c,)
                kl_total += (kl_rows * valid).sum()
                ce_total += (ce_rows * valid).sum()
                if not (need_hidden or need_weight):
                    continue
                # KD part: alpha * T * (q_T - p_T); CE part: (1 - alpha) * (softmax(z_s) - onehot).
                grad_logits = z_s.sub_(lse[:, None]).exp_()  # softmax(z_s), reusing z_s: (c, V)
                grad_logits[torch.arange(target.numel()), safe_target] -= 1.0
                grad_logits *= 1.0 - alpha
                grad_logits += log_q_t.exp_().sub_(p_t).mul_(alpha * t)
                grad_logits *= valid[:, None]
                if capped is not None:
                    grad_logits *= 1.0 - capped * capped
                g = grad_logits.to(dtype)
                if need_hidden:
                    grad_hidden[start : start + chunk] = (g @ w).to(hidden.dtype)  # (c, d_s)
                if need_weight:
                    grad_weight[:vocab] += (g.T @ h).float()  # (V, d_s)
        ctx.save_for_backward(grad_hidden, grad_weight)
        ctx.has = (need_hidden, need_weight)
        ctx.weight_dtype = weight.dtype
        kl_total, ce_total = kl_total * (t * t), ce_total
        loss = alpha * kl_total + (1.0 - alpha) * ce_total
        ctx.mark_non_differentiable(kl_total, ce_total)
        return loss, kl_total, ce_total

    @staticmethod
    def backward(ctx, grad_loss, _grad_kl, _grad_ce):
        grad_hidden, grad_weight = ctx.saved_tensors
        need_hidden, need_weight = ctx.has
        return (
            grad_hidden * grad_loss if need_hidden else None,
            (grad_weight * grad_loss).to(ctx.weight_dtype) if need_weight else None,
            None, None, None, None, None, None, None, None, None,
        )


def linear_distill(hidden, weight, teacher_hidden, teacher_weight, targets, *, temperature: float, alpha: float,
                   chunk: int = 256, vocab: int | None = None, softcaps: tuple = (None, None)):
    """(loss sum, T^2-scaled KL sum, CE sum) over scored positions; never materialises all logits."""
    vocab = vocab or min(weight.size(0), teacher_weight.size(0))
    return _LinearDistill.apply(hidden, weight, teacher_hidden, teacher_weight, targets, chunk, vocab,
                                temperature, alpha, softcaps, compute_dtype(hidden))


@dataclass
class DistillParts:
    loss: torch.Tensor  # alpha * T^2 * KL + (1 - alpha) * CE, summed over scored positions
    kl: torch.Tensor  # T^2-scaled KL sum (no gradient)
    ce: torch.Tensor  # cross-entropy sum (no gradient)
    n_scored: int


def causal_lm_distill(student, teacher, input_ids: torch.Tensor, *, vocab: int, temperature: float, alpha: float,
                      chunk: int, labels: torch.Tensor | None = None) -> DistillParts:
    """Distillation loss of `student` toward `teacher` on a batch; positions 0..seq-2 predict 1..seq-1.

    input_ids: (batch, seq); `labels` (same shape, -100 = not scored) limits both terms to e.g. answers.
    The teacher runs without gradients; the caller's autocast (bf16) applies to both forwards.
    """
    backbone, head, softcap = backbone_and_head(student)
    t_backbone, t_head, t_softcap = backbone_and_head(teacher)
    with torch.no_grad():
        t_hidden = t_backbone(input_ids=input_ids).last_hidden_state  # (batch, seq, d_t)
        t_hidden = t_hidden[:, :-1].reshape(-1, t_hidden.size(-1))  # (batch*(seq-1), d_t)
    hidden = backbone(input_ids=input_ids).last_hidden_state  # (batch, seq, d_s)
    hidden = hidden[:, :-1].reshape(-1, hidden.size(-1))  # (batch*(seq-1), d_s)
    targets = (input_ids if labels is None else labels)[:, 1:].reshape(-1)  # (batch*(seq-1),)
    n_scored = targets.numel() if labels is None else int((targets != -100).sum())
    loss, kl, ce = linear_distill(hidden, head.weight, t_hidden, t_head.weight, targets, temperature=temperature,
                                  alpha=alpha, chunk=chunk, vocab=vocab, softcaps=(softcap, t_softcap))
    return DistillParts(loss, kl, ce, n_scored)
