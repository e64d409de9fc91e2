"""The training head loss (train/head_loss.py) against the reference shared.lm.linear_cross_entropy and a
plain full-logits cross-entropy: same summed loss, same gradients, with and without bf16 autocast."""

import pytest
import torch
import torch.nn.functional as F

from wattlm.shared.lm import linear_cross_entropy
from wattlm.train.head_loss import causal_lm_loss, head_cross_entropy, low_precision_weight


def _case(n=37, d=24, vocab=301, trainable_head=False, ignored=True):
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(n, d, generator=gen, requires_grad=True)
    head = torch.nn.Linear(d, vocab, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.randn(vocab, d, generator=gen) * 0.3)
    head.weight.requires_grad_(trainable_head)
    targets = torch.randint(0, vocab, (n,), generator=gen)
    if ignored:
        targets[::5] = -100
    return hidden, head, targets


def _grads(loss, *tensors):
    return torch.autograd.grad(loss, [t for t in tensors if t.requires_grad])


@pytest.mark.parametrize("trainable_head", [False, True])
@pytest.mark.parametrize("chunk", [8, 1024])
def test_fp32_matches_full_logits_cross_entropy(trainable_head, chunk):
    hidden, head, targets = _case(trainable_head=trainable_head)
    ours = head_cross_entropy(hidden, head, targets, chunk=chunk)
    reference = F.cross_entropy(hidden @ head.weight.T, targets, ignore_index=-100, reduction="sum")
    assert torch.allclose(ours, reference, rtol=1e-5)
    for mine, theirs in zip(_grads(ours, hidden, head.weight), _grads(reference, hidden, head.weight), strict=True):
        assert torch.allclose(mine, theirs, atol=1e-5)


@pytest.mark.parametrize("trainable_head", [False, True])
def test_bf16_matches_the_reference_fused_loss(trainable_head):
    hidden, head, targets = _case(n=64, d=32, vocab=2048, trainable_head=trainable_head)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = head_cross_entropy(hidden, head, targets, chunk=16)
        reference = linear_cross_entropy(hidden, head.weight, targets, chunk=16)
    # Same bf16 logits, both losses in fp32: equal up to fp32 summation order.
    assert torch.allclose(ours, reference, rtol=1e-5)
    for mine, theirs in zip(_grads(ours, hidden, head.weight), _grads(reference, hidden, head.weight), strict=True):
        # the gradient of logits is rounded to bf16 once in both; the matmuls then agree to bf16 precision
        assert torch.allclose(mine, theirs, rtol=2e-2, atol=2e-3 * theirs.abs().max().item())


def test_softcapped_head_matches_full_logits():
    hidden, head, targets = _case()
    ours = head_cross_entropy(hidden, head, targets, chunk=8, softcap=3.0)
    logits = torch.tanh((hidden @ head.weight.T) / 3.0) * 3.0
    reference = F.cross_entropy(logits, targets, ignore_index=-100, reduction="sum")
    assert torch.allclose(ours, reference, rtol=1e-5)
    assert torch.allclose(_grads(ours, hidden)[0], _grads(reference, hidden)[0], atol=1e-5)


def test_low_precision_head_is_cast_once_and_recast_after_a_change():
    _, head, _ = _case()
    first = low_precision_weight(head, torch.bfloat16)
    assert first.dtype == torch.bfloat16 and low_precision_weight(head, torch.bfloat16) is first
    with torch.no_grad():
        head.weight.mul_(2.0)  # bumps the version: the cached copy is stale
    second = low_precision_weight(head, torch.bfloat16)
    assert second is not first and torch.equal(second, (head.weight * 1).bfloat16())
    head.weight.requires_grad_(True)  # a trainable head changes every step: never cached
    assert low_precision_weight(head, torch.bfloat16) is not low_precision_weight(head, torch.bfloat16)


def test_causal_lm_loss_equals_the_shared_nll_on_a_tiny_model(tiny_model_dir):
    from wattlm.models.hf import load_causal_lm
    from wattlm.shared.lm import causal_lm_nll

    model = load_causal_lm(tiny_model_dir, train=True)
    ids = torch.randint(0, 500, (2, 24), generator=torch.Generator().manual_seed(1))
    labels = ids.clone()
    labels[:, :10] = -100
    for kwargs in ({}, {"labels": labels}):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ours, n_ours = causal_lm_loss(model, ids, chunk=16, **kwargs)
        ours.backward()
        mine = {n: p.grad.clone() for n, p in model.named_parameters()}
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            reference, n_ref = causal_lm_nll(model, ids, chunk=16, **kwargs)
        reference.backward()
        assert n_ours == n_ref and torch.allclose(ours, reference, rtol=1e-4)
        for name, param in model.named_parameters():
            scale = param.grad.abs().max().item()
            assert torch.allclose(mine[name], param.grad, atol=3e-2 * scale), name


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_softmax_written_over_its_input_equals_the_out_of_place_one(dtype):
    logits = (torch.randn(5, 70001, generator=torch.Generator().manual_seed(2)) * 4).to(dtype)
    expected = torch.softmax(logits, dim=-1)
    assert torch.equal(torch.ops.aten._softmax.out(logits, -1, False, out=logits), expected)


def test_logits_buffer_is_reused_and_released():
    from wattlm.train import head_loss

    hidden, head, targets = _case(n=40)
    first = head_cross_entropy(hidden, head, targets, chunk=16)
    buffer = head_loss._buffers.logits[1]
    assert buffer.shape == (16, 301)
    second = head_cross_entropy(hidden, head, targets, chunk=16)
    assert head_loss._buffers.logits[1] is buffer and torch.equal(first, second)
    head_loss.release_buffers()
    assert head_loss._buffers.logits is None
