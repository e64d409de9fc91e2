"""Training devices: device resolution, the autocast dtype per device, gradient checkpointing, config fields."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from wattlm.errors import WattError
from wattlm.train.config import TrainConfig
from wattlm.train.device import autocast, autocast_dtype, enable_gradient_checkpointing, resolve_device, to_device
from wattlm.train.loop import train

TEXTS = ["The breaker trips when the relay sees an overcurrent on feeder seven. " * 6] * 6


def test_auto_and_cpu_resolve_to_the_cpu_here():
    assert resolve_device("auto").type == "cpu" and resolve_device("cpu").type == "cpu"


def test_cuda_without_a_gpu_is_a_one_line_error():
    with pytest.raises(WattError) as err:
        resolve_device("cuda")
    assert "train.device is cuda" in str(err.value) and "\n" not in str(err.value)


def test_cuda_device_of_each_torchrun_process(monkeypatch):
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert resolve_device("auto") == torch.device("cuda", 1) == resolve_device("cuda")
    assert chosen == [1, 1]
    assert resolve_device("cpu").type == "cpu"  # cpu stays the CPU on a GPU machine


@pytest.mark.parametrize(("supported", "expected"), [(True, torch.bfloat16), (False, None)])
def test_bf16_only_on_gpus_that_support_it(monkeypatch, supported, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: supported)
    gpu = torch.device("cuda", 0)
    assert autocast_dtype(gpu, bf16=True) is expected
    assert autocast_dtype(gpu, bf16=False) is None
    assert autocast_dtype(torch.device("cpu"), bf16=True) is torch.bfloat16
    if expected is None:  # fp32 on old GPUs: no autocast at all (fp16 would need loss scaling)
        assert not isinstance(autocast(gpu, True), torch.autocast)


def test_cpu_autocast_is_the_loops_old_call():
    cpu = torch.device("cpu")
    with autocast(cpu, True):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") is torch.bfloat16
    with autocast(cpu, False):
        assert not torch.is_autocast_enabled("cpu")
    batch = (torch.zeros(2, 3), torch.ones(2, 3))
    assert to_device(batch, cpu) is batch


def _tiny_model():
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(config).train()


def _loss_and_grads(model, ids):
    from wattlm.shared.lm import causal_lm_nll

    model.zero_grad()
    nll, _ = causal_lm_nll(model, ids, chunk=16)
    nll.backward()
    return nll.item(), {name: p.grad.clone() for name, p in model.named_parameters()}


def test_gradient_checkpointing_same_loss_and_gradients():
    ids = torch.randint(0, 97, (2, 24), generator=torch.Generator().manual_seed(1))
    plain = _tiny_model()
    loss, grads = _loss_and_grads(plain, ids)
    checkpointed = _tiny_model()
    enable_gradient_checkpointing(checkpointed)
    forwards = []
    # A pre-hook: recomputation stops as soon as backward has what it needs, before the MLP's forward ends.
    checkpointed.model.layers[0].mlp.register_forward_pre_hook(lambda *a: forwards.append(1))
    loss_ckpt, grads_ckpt = _loss_and_grads(checkpointed, ids)
    assert len(forwards) == 2  # the layer ran again in backward: its activations were not kept
    assert loss_ckpt == pytest.approx(loss, rel=1e-6)
    for name, grad in grads.items():
        assert torch.allclose(grad, grads_ckpt[name], atol=1e-6), name


def test_loop_with_gradient_checkpointing_trains_the_same(tiny_model_dir, tmp_path):
    common = dict(steps=3, seq_len=32, batch_size=2, lr=3e-3, warmup_steps=1, bf16=False, save_every=0)
    plain = train(tiny_model_dir, TEXTS, None, TrainConfig(**common), progress=False)
    checkpointed = train(tiny_model_dir, TEXTS, None, TrainConfig(**common, gradient_checkpointing=True, device="cpu"),
                         progress=False)
    assert checkpointed.losses == pytest.approx(plain.losses, rel=1e-5)


def test_cuda_recipe_fails_in_the_loop_too(tiny_model_dir):
    with pytest.raises(WattError, match="train.device is cuda"):  # the recipe path (watt run) reaches the loop
        train(tiny_model_dir, TEXTS, None, TrainConfig(steps=1, device="cuda"), progress=False)


def test_config_fields_validate_and_stay_out_of_the_cache_key(tiny_model_dir, tmp_path):
    from pydantic import ValidationError

    from wattlm.models.store import add_model
    from wattlm.registry import Registry
    from wattlm.train.stage import _cache_key

    with pytest.raises(ValidationError, match="device"):
        TrainConfig(device="tpu")
    assert TrainConfig().device == "auto" and TrainConfig().gradient_checkpointing is False
    registry = Registry(tmp_path / "home")
    parent = add_model(registry, str(tiny_model_dir), name="tiny")
    placed = TrainConfig(device="cpu", gradient_checkpointing=True, distributed={"strategy": "fsdp"})
    # Where and how a run computes does not change the model: recipes keep their cache keys.
    assert _cache_key(parent, parent, None, None, placed) == _cache_key(parent, parent, None, None, TrainConfig())
    assert _cache_key(parent, parent, None, None, TrainConfig(steps=7)) != _cache_key(parent, parent, None, None,
                                                                                       TrainConfig())


def test_watt_train_device_option_one_line_error(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "wattlm.cli", "train", "--model", "m", "--data", "d", "--name", "n",
                          "--device", "cuda", "--home", str(tmp_path / "home")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "train.device is cuda" in errors[0], out.stderr
