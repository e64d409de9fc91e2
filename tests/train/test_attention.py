"""The batched-matmul causal attention (train/attention.py) against torch's sdpa: outputs and gradients
within bf16 rounding, GQA included; anything it does not cover goes to sdpa unchanged."""

import types

import pytest
import torch
import torch.nn.functional as F

from wattlm.train.attention import attention, restore_attention, use_bmm_attention


def _qkv(heads, kv_heads, seq, dim, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(2, n, seq, dim, generator=generator, requires_grad=True) for n in (heads, kv_heads, kv_heads)]


@pytest.mark.parametrize(("heads", "kv_heads", "seq", "dim"), [(9, 3, 40, 16), (4, 1, 33, 32), (2, 2, 8, 8)])
def test_matches_sdpa_with_its_gradients(heads, kv_heads, seq, dim):
    q, k, v = _qkv(heads, kv_heads, seq, dim)
    grad_out = torch.randn(2, seq, heads, dim, generator=torch.Generator().manual_seed(1))
    reference = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True, scale=0.3)  # fp32
    expected = torch.autograd.grad(reference.transpose(1, 2), (q, k, v), grad_out)
    module = types.SimpleNamespace(is_causal=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, weights = attention(module, q, k, v, None, scaling=0.3)
    assert weights is None and out.dtype == torch.bfloat16 and out.shape == (2, seq, heads, dim)
    assert torch.allclose(out.float(), reference.transpose(1, 2), atol=3e-2)
    for got, want in zip(torch.autograd.grad(out.float(), (q, k, v), grad_out), expected, strict=True):
        assert torch.allclose(got, want, atol=4e-2 * want.abs().max().item())


def test_what_it_does_not_cover_goes_to_sdpa(monkeypatch):
    calls = []
    monkeypatch.setattr("transformers.integrations.sdpa_attention.sdpa_attention_forward",
                        lambda *a, **k: calls.append(k) or ("sdpa", None))
    q, k, v = _qkv(4, 2, 16, 8)
    module = types.SimpleNamespace(is_causal=True)
    mask = torch.ones(1, 1, 16, 16, dtype=torch.bool)
    attention(module, q, k, v, None)  # no autocast: fp32 training
    with torch.autocast("cpu", dtype=torch.bfloat16):
        attention(module, q, k, v, mask)  # padding or another mask
        attention(module, q, k, v, None, dropout=0.1)
        attention(types.SimpleNamespace(is_causal=False), q, k, v, None)  # bidirectional
        with torch.no_grad():
            attention(module, q, k, v, None)  # inference: nothing to keep for backward
    assert len(calls) == 5


def test_set_per_model_and_restored(tiny_model_dir):
    from wattlm.models.hf import load_causal_lm

    model, other = load_causal_lm(tiny_model_dir), load_causal_lm(tiny_model_dir)
    ids = torch.randint(0, 500, (2, 24), generator=torch.Generator().manual_seed(2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        before = model(input_ids=ids).logits.float()
        assert use_bmm_attention(model)
        assert other.config._attn_implementation == "sdpa"
        after = model(input_ids=ids).logits.float()
    assert torch.allclose(after, before, atol=5e-2 * before.abs().max().item())
    restore_attention(model)
    assert model.config._attn_implementation == "sdpa"
