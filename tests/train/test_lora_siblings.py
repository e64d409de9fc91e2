"""Sibling LoRA groups (train/lora_siblings.py): q/k/v and gate/up computed in one pass give the separate
lean layers' loss and gradients; kept outputs serve only the same input; one dropout mask per group."""

import torch

from tests.train.test_lean_lora import _lora_model, _loss_and_grads
from wattlm.train.lean_lora import lean_lora
from wattlm.train.lora_siblings import group_siblings


def test_grouped_siblings_match_the_separate_layers(tiny_model_dir):
    ids = torch.randint(0, 500, (2, 20), generator=torch.Generator().manual_seed(3))
    model = _lora_model(tiny_model_dir)
    lean_lora(model, torch.bfloat16)
    loss_alone, grads_alone = _loss_and_grads(model, ids)
    assert group_siblings(model) == 2 * 2  # q/k/v and gate/up in each of 2 layers
    loss_grouped, grads_grouped = _loss_and_grads(model, ids)
    assert torch.allclose(loss_grouped, loss_alone, rtol=2e-3)
    for name, grad in grads_alone.items():
        assert torch.allclose(grads_grouped[name], grad, atol=3e-2 * grad.abs().max().item()), name


def _attention(model):
    return next(m for m in model.modules() if hasattr(m, "q_proj") and hasattr(m, "k_proj"))


def test_kept_outputs_serve_only_the_same_unchanged_input(tiny_model_dir):
    model = _lora_model(tiny_model_dir)
    lean_lora(model, torch.bfloat16)
    group_siblings(model)
    attention = _attention(model)
    x, other = torch.randn(1, 5, 64), torch.randn(1, 5, 64)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        attention.q_proj(x)
        fresh = attention.k_proj(other)  # another input: computed for it, not the kept one for x
        assert torch.allclose(fresh.float(), attention.k_proj._wattlm_peft_forward(other).float(), atol=5e-2)
        attention.q_proj(x)
        x.mul_(2.0)  # changed in place after the pass: the kept output is stale
        changed = attention.k_proj(x)
        assert torch.allclose(changed.float(), attention.k_proj._wattlm_peft_forward(x).float(), atol=1e-1)
        group = attention.q_proj._wattlm_group
        y = torch.randn(1, 5, 64)
        attention.q_proj(y), attention.k_proj(y), attention.v_proj(y)
        assert group.kept is None  # every sibling took its output: nothing held


def test_base_weight_cache_follows_weight_changes(tiny_model_dir):
    model = _lora_model(tiny_model_dir)
    lean_lora(model, torch.bfloat16)
    group_siblings(model)
    attention = _attention(model)
    x = torch.randn(1, 5, 64)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        attention.q_proj(x)
        before = attention.v_proj(x).float()
        attention.v_proj.base_layer.weight.add_(1.0)  # e.g. a merge or a reload changed the base weight
        attention.q_proj(x)
        after = attention.v_proj(x).float()
    assert not torch.allclose(before, after, atol=1e-1)
    assert torch.allclose(after, attention.v_proj._wattlm_peft_forward(x).float(), atol=1e-1)


def test_dropout_in_training_one_mask_per_group(tiny_model_dir):
    model = _lora_model(tiny_model_dir, dropout=0.5)
    lean_lora(model, torch.bfloat16)
    group_siblings(model)
    mlp = next(m for m in model.modules() if hasattr(m, "gate_proj"))
    with torch.no_grad():  # gate and up with the same weights: only their dropout masks could tell them apart
        mlp.up_proj.lora_A["default"].weight.copy_(mlp.gate_proj.lora_A["default"].weight)
        mlp.up_proj.lora_B["default"].weight.copy_(mlp.gate_proj.lora_B["default"].weight)
        mlp.up_proj.base_layer.weight.copy_(mlp.gate_proj.base_layer.weight)
    x = torch.randn(1, 8, 64)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        model.train()
        first = mlp.gate_proj(x), mlp.up_proj(x)
        second = mlp.gate_proj(x), mlp.up_proj(x)
        assert not torch.equal(first[0], second[0])  # a new mask each pass
        assert torch.equal(*first)  # the siblings share the pass's mask
        model.eval()
        assert torch.equal(mlp.gate_proj(x), mlp.gate_proj(x))
