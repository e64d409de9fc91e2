"""QLoRA as a recipe option (`train.quantize_base`): parsing, the cache key, the device check's one-line
refusal, and merging the trained adapter into the full-precision base."""

from __future__ import annotations

import importlib.util
import sys
import types

import pytest
import torch
from pydantic import ValidationError

from wattlm.errors import WattError
from wattlm.train.config import TrainConfig
from wattlm.train.quantized import full_precision_adapter, require_bitsandbytes

TEXTS = ["The breaker trips when the relay sees an overcurrent on feeder seven. " * 6] * 6


def test_the_field_parses_and_defaults_to_none():
    assert TrainConfig().quantize_base == "none"
    assert TrainConfig(quantize_base="4bit").quantize_base == "4bit"
    with pytest.raises(ValidationError, match="quantize_base"):
        TrainConfig(quantize_base="2bit")


def test_quantized_bases_train_lora_only_and_not_under_fsdp():
    with pytest.raises(ValidationError, match="quantize_base 4bit trains LoRA adapters"):
        TrainConfig(quantize_base="4bit", lora=None)
    with pytest.raises(ValidationError, match="not supported with distributed.strategy fsdp"):
        TrainConfig(quantize_base="8bit", distributed={"strategy": "fsdp"})
    assert TrainConfig(quantize_base="8bit", distributed={"strategy": "ddp"}).quantize_base == "8bit"
    assert TrainConfig(lora=None).quantize_base == "none"  # a full fine-tune is still fine without it


def test_a_recipe_names_the_field(tmp_path):
    from wattlm.recipe import TrainSection

    assert TrainSection(quantize_base="4bit").train_config().quantize_base == "4bit"
    with pytest.raises(ValidationError, match="quantize_base"):
        TrainSection(quantize_base="fp4")


def test_none_stays_out_of_the_cache_key_and_bits_are_in_it(tiny_model_dir, tmp_path):
    from wattlm.models.store import add_model
    from wattlm.registry import Registry
    from wattlm.train.stage import _cache_key

    assert "quantize_base" not in TrainConfig().model_dump()  # recipes without the field keep their keys
    registry = Registry(tmp_path / "home")
    parent = add_model(registry, str(tiny_model_dir), name="tiny")

    def key(**fields) -> str:
        return _cache_key(parent, parent, None, None, TrainConfig(**fields))

    assert key() == key(quantize_base="none")
    assert len({key(), key(quantize_base="8bit"), key(quantize_base="4bit")}) == 3  # rounded weights, other model


def _fake_bitsandbytes(monkeypatch, error: Exception | None):
    """A stand-in bitsandbytes whose layers fail (like a build without kernels for the device) or work."""

    class Layer(torch.nn.Linear):
        def __init__(self, n_in, n_out, bias=False, **kwargs):
            super().__init__(n_in, n_out, bias=bias)

        def forward(self, x):
            if error is not None:
                raise error
            return super().forward(x)

    module = types.ModuleType("bitsandbytes")
    module.__version__ = "0.0-fake"
    module.nn = types.SimpleNamespace(Linear4bit=Layer, Linear8bitLt=Layer)
    monkeypatch.setitem(sys.modules, "bitsandbytes", module)


def test_a_device_bitsandbytes_cannot_run_is_refused_in_one_line(monkeypatch):
    _fake_bitsandbytes(monkeypatch, RuntimeError("no kernel image is available for this device\nmore detail"))
    with pytest.raises(WattError) as refused:
        require_bitsandbytes("4bit", torch.device("cpu"))
    message = str(refused.value)
    assert message.startswith("train.quantize_base: 4bit needs bitsandbytes with cpu support") and "\n" not in message
    assert "no kernel image" in message and "quantize_base: none" in message
    _fake_bitsandbytes(monkeypatch, None)
    require_bitsandbytes("8bit", torch.device("cpu"))  # a backend that runs passes


def test_missing_bitsandbytes_is_refused_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    with pytest.raises(WattError, match=r"^train.quantize_base: 8bit needs bitsandbytes with cpu support: .*pip install"):
        require_bitsandbytes("8bit", torch.device("cpu"))


def _bitsandbytes_runs_4bit_here() -> bool:
    if importlib.util.find_spec("bitsandbytes") is None:
        return False
    try:
        require_bitsandbytes("4bit", torch.device("cpu"))
    except WattError:
        return False
    return True


BNB_CPU = _bitsandbytes_runs_4bit_here()


@pytest.mark.skipif(BNB_CPU, reason="the installed bitsandbytes runs 4-bit on this CPU (the run test covers it)")
def test_the_loop_refuses_before_training_where_bitsandbytes_cannot_run(tiny_model_dir):
    config = TrainConfig(steps=1, seq_len=32, batch_size=2, save_every=0, quantize_base="4bit")
    with pytest.raises(WattError, match="^train.quantize_base: 4bit needs bitsandbytes with cpu support") as refused:
        from wattlm.train.loop import train

        train(tiny_model_dir, TEXTS, None, config, progress=False)
    assert "\n" not in str(refused.value)


@pytest.mark.skipif(not BNB_CPU, reason="bitsandbytes is not installed or cannot run 4-bit on this CPU")
@pytest.mark.parametrize("bits", ["4bit", "8bit"])
def test_a_tiny_qlora_run_trains_and_saves_a_full_precision_model(tiny_model_dir, tmp_path, bits):
    from wattlm.models.hf import load_causal_lm
    from wattlm.train.loop import train

    common = dict(steps=4, seq_len=32, batch_size=2, lr=3e-3, warmup_steps=1, bf16=False, save_every=0)
    out = tmp_path / "out"
    out.mkdir()
    quantized = train(tiny_model_dir, TEXTS, out, TrainConfig(**common, quantize_base=bits), progress=False)
    plain = train(tiny_model_dir, TEXTS, None, TrainConfig(**common), progress=False)
    assert quantized.losses[-1] < quantized.losses[0]  # it learns
    assert quantized.losses[0] == pytest.approx(plain.losses[0], rel=0.05)  # rounded weights, nearly the same loss
    assert quantized.losses != plain.losses  # ... but not the same numbers
    saved = load_causal_lm(out)
    assert all(p.dtype == torch.float32 for p in saved.parameters())  # merged into fp32, not saved quantized


@pytest.mark.skipif(not BNB_CPU, reason="bitsandbytes is not installed or cannot run 4-bit on this CPU")
def test_the_base_is_loaded_quantized_and_frozen_with_the_head_in_full_precision(tiny_model_dir):
    import bitsandbytes as bnb

    from wattlm.train.quantized import load_quantized_lm

    model = load_quantized_lm(tiny_model_dir, "4bit", torch.device("cpu"), bf16=False, gradient_checkpointing=False)
    quantized = [name for name, module in model.named_modules() if isinstance(module, bnb.nn.Linear4bit)]
    assert len(quantized) == 2 * 7  # q, k, v, o, gate, up, down in each of the 2 layers
    assert type(model.lm_head) is torch.nn.Linear and model.lm_head.weight.dtype == torch.float32
    assert not any(p.requires_grad for p in model.parameters())  # only the adapters peft adds will train


def test_the_trained_adapter_is_merged_into_the_full_precision_base(tiny_model_dir):
    """The save path: the adapter of a peft model moves onto a fresh fp32 base and merges as trained."""
    from peft import LoraConfig, get_peft_model

    from wattlm.models.hf import load_causal_lm

    torch.manual_seed(0)
    trained = get_peft_model(load_causal_lm(tiny_model_dir), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                                         task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, param in trained.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.02)  # as if trained: lora_B starts at zero
    moved = full_precision_adapter(trained, tiny_model_dir)
    expected = trained.merge_and_unload().state_dict()
    merged = moved.merge_and_unload().state_dict()
    base = load_causal_lm(tiny_model_dir).state_dict()
    assert merged.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.allclose(merged[name], tensor, atol=1e-6), name
    assert any(not torch.equal(expected[name], base[name]) for name in base if "proj" in name)  # the adapter counted
