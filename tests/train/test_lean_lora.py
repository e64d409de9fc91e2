"""The lean LoRA forward (train/lean_lora.py) against peft's own: same loss and LoRA gradients under bf16
autocast on a tiny random model; peft's forward where the lean one does not apply; merging unchanged."""

import torch

from wattlm.shared.lm import causal_lm_nll
from wattlm.train.lean_lora import lean_lora


def _lora_model(model_dir, dropout=0.0, seed=0):
    from peft import LoraConfig, get_peft_model

    from wattlm.models.hf import load_causal_lm

    torch.manual_seed(seed)
    model = get_peft_model(load_causal_lm(model_dir, train=True), LoraConfig(
        r=4, lora_alpha=8, lora_dropout=dropout, target_modules="all-linear", task_type="CAUSAL_LM"))
    with torch.no_grad():  # B starts at zero in LoRA: make it non-zero so the low-rank path counts
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    return model


def _loss_and_grads(model, ids):
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = causal_lm_nll(model, ids, chunk=16)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def test_lean_forward_matches_peft(tiny_model_dir):
    ids = torch.randint(0, 500, (2, 20), generator=torch.Generator().manual_seed(3))
    model = _lora_model(tiny_model_dir)
    loss_peft, grads_peft = _loss_and_grads(model, ids)
    assert lean_lora(model, torch.bfloat16) == 2 * 7  # q k v o gate up down in each of 2 layers
    loss_lean, grads_lean = _loss_and_grads(model, ids)
    assert torch.allclose(loss_lean, loss_peft, rtol=2e-3)
    for name, grad in grads_peft.items():
        assert torch.allclose(grads_lean[name], grad, atol=3e-2 * grad.abs().max().item()), name


def test_peft_forward_without_autocast_and_when_disabled(tiny_model_dir):
    ids = torch.randint(0, 500, (1, 12), generator=torch.Generator().manual_seed(4))
    model = _lora_model(tiny_model_dir)
    with torch.no_grad():
        expected = model(input_ids=ids).logits
        lean_lora(model, torch.bfloat16)
        assert torch.equal(model(input_ids=ids).logits, expected)  # fp32: peft's forward, bit for bit
        with model.disable_adapter():
            plain = model(input_ids=ids).logits
        assert not torch.allclose(plain, expected)


def test_dropout_is_applied_and_merging_still_works(tiny_model_dir):
    ids = torch.randint(0, 500, (2, 16), generator=torch.Generator().manual_seed(5))
    model = _lora_model(tiny_model_dir, dropout=0.5)
    lean_lora(model, torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model.train()
        noisy = [model(input_ids=ids).logits.float() for _ in range(2)]
        model.eval()
        calm = [model(input_ids=ids).logits.float() for _ in range(2)]
    assert not torch.allclose(noisy[0], noisy[1]) and torch.equal(calm[0], calm[1])
    with torch.no_grad():
        expected = model(input_ids=ids).logits
        merged = model.merge_and_unload()  # the fp32 base weights were left alone
        assert torch.allclose(merged(input_ids=ids).logits, expected, atol=1e-4)


def test_bf16_lora_loss_curve_matches_the_plain_path(tiny_model_dir, tmp_path, monkeypatch):
    """The whole loop with the lean layers (grouped siblings), the batched-matmul attention and the training
    head loss, and with peft's forward, sdpa and the shared fused loss (the path before them): the same loss
    curve within bf16 noise."""
    from wattlm.shared.lm import causal_lm_nll
    from wattlm.train import loop
    from wattlm.train.config import LoraSettings, TrainConfig

    texts = ["Feeder seven trips on overcurrent when the relay sees a fault. " * 8] * 6
    config = TrainConfig(steps=6, seq_len=32, batch_size=2, lr=5e-3, warmup_steps=1, bf16=True, save_every=0,
                         lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    lean = loop.train(tiny_model_dir, texts, tmp_path / "lean", config, progress=False).losses
    monkeypatch.setattr("wattlm.train.lean_lora.lean_lora", lambda model, dtype: 0)
    monkeypatch.setattr("wattlm.train.attention.use_bmm_attention", lambda model: False)
    monkeypatch.setattr("wattlm.train.head_loss.causal_lm_loss", causal_lm_nll)
    plain = loop.train(tiny_model_dir, texts, tmp_path / "plain", config, progress=False).losses
    assert lean[-1] < lean[0]
    assert max(abs(a - b) for a, b in zip(lean, plain, strict=True)) < 0.02 * plain[0]


def test_fast_dropout_rate_and_scale():
    from wattlm.train.lean_lora import _dropout

    x = torch.ones(400, 500, dtype=torch.bfloat16)
    layer = torch.nn.Dropout(0.05).train()
    dropped, scale = _dropout(x, layer)
    assert set(dropped.unique().tolist()) == {0.0, 1.0}
    assert abs((dropped == 0).float().mean().item() - 0.05) < 0.003  # 200k draws: 5 sigma is ~0.0025
    assert abs(scale - 1 / 0.95) < 1e-4
    assert _dropout(x, layer.eval())[0] is x and _dropout(x, torch.nn.Identity())[1] == 1.0
