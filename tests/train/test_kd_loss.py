"""The fused distillation loss equals the textbook formula, in value and in gradients."""

import pytest
import torch
import torch.nn.functional as F

from wattlm.train.kd_loss import linear_distill


def _reference(hidden, weight, t_hidden, t_weight, targets, temperature, alpha, softcap=None):
    logits, t_logits = hidden @ weight.T, t_hidden @ t_weight.T
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    keep = targets != -100
    kl = F.kl_div(F.log_softmax(logits[keep] / temperature, -1), F.log_softmax(t_logits[keep] / temperature, -1),
                  log_target=True, reduction="sum") * temperature**2
    ce = F.cross_entropy(logits, targets, ignore_index=-100, reduction="sum")
    return alpha * kl + (1 - alpha) * ce, kl, ce


@pytest.mark.parametrize("temperature, alpha, softcap", [(2.0, 0.5, None), (1.0, 1.0, None), (4.0, 0.0, None),
                                                         (3.0, 0.7, 5.0)])
def test_fused_distill_matches_reference(temperature, alpha, softcap):
    torch.manual_seed(0)
    hidden = torch.randn(11, 8, requires_grad=True)
    weight = torch.randn(30, 8, requires_grad=True)
    t_hidden, t_weight = torch.randn(11, 12), torch.randn(30, 12)  # the teacher is wider than the student
    targets = torch.tensor([1, 2, -100, 4, 5, 6, -100, 8, 9, 0, 29])
    loss, kl, ce = linear_distill(hidden, weight, t_hidden, t_weight, targets, temperature=temperature,
                                  alpha=alpha, chunk=4, softcaps=(softcap, None))
    loss.backward()
    ref_h, ref_w = hidden.detach().clone().requires_grad_(), weight.detach().clone().requires_grad_()
    ref_loss, ref_kl, ref_ce = _reference(ref_h, ref_w, t_hidden, t_weight, targets, temperature, alpha, softcap)
    ref_loss.backward()
    assert torch.allclose(kl, ref_kl, atol=1e-4) and torch.allclose(ce, ref_ce, atol=1e-4)
    assert torch.allclose(loss, ref_loss, atol=1e-4)
    assert torch.allclose(hidden.grad, ref_h.grad, atol=1e-4)
    assert torch.allclose(weight.grad, ref_w.grad, atol=1e-4)


def test_padded_head_rows_are_ignored():
    """A head padded past the tokenizer compares only the shared columns; padding rows get no gradient."""
    torch.manual_seed(1)
    hidden = torch.randn(5, 8, requires_grad=True)
    weight = torch.randn(36, 8, requires_grad=True)  # 30 real tokens + 6 padding rows
    t_hidden, t_weight = torch.randn(5, 8), torch.randn(30, 8)
    targets = torch.tensor([1, 2, 3, 4, 5])
    loss, _, _ = linear_distill(hidden, weight, t_hidden, t_weight, targets, temperature=2.0, alpha=0.5, chunk=2)
    loss.backward()
    ref_loss, _, _ = _reference(hidden.detach(), weight.detach()[:30], t_hidden, t_weight, targets, 2.0, 0.5)
    assert torch.allclose(loss, ref_loss, atol=1e-4)
    assert weight.grad[30:].abs().sum() == 0


def test_identical_student_and_teacher_have_zero_kl():
    torch.manual_seed(2)
    hidden, weight = torch.randn(6, 8), torch.randn(20, 8)
    _, kl, _ = linear_distill(hidden, weight, hidden, weight, torch.arange(6), temperature=2.0, alpha=1.0, chunk=4)
    assert abs(kl.item()) < 1e-4
