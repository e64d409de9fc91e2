"""A run killed mid-way and started again ends with the same weights as one that never stopped."""

import pytest
import torch
from safetensors.torch import load_file

from wattlm.train.config import LoraSettings, TrainConfig
from wattlm.train.loop import train

TEXTS = ["Protection relays isolate faults within milliseconds to keep the grid stable. " * 5,
         "Operators verify voltage absence before grounding any conductor. " * 5] * 3


def _config(**kw):
    base = dict(steps=6, seq_len=32, batch_size=2, lr=5e-3, warmup_steps=1, bf16=False, save_every=2,
                lora=LoraSettings(r=4, alpha=8, dropout=0.1))  # dropout: RNG state must survive the restart
    return TrainConfig(**{**base, **kw})


def _weights(folder):
    return load_file(folder / "model.safetensors")


@pytest.mark.parametrize("lora", [True, False])
def test_resume_after_interrupt_matches_uninterrupted_run(tiny_model_dir, tmp_path, monkeypatch, lora):
    config = _config() if lora else _config(lora=None)
    straight = train(tiny_model_dir, TEXTS, tmp_path / "straight", config, progress=False)

    real_step = torch.optim.AdamW.step
    calls = {"n": 0}

    def crash_on_fifth(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("simulated kill")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", crash_on_fifth)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_model_dir, TEXTS, tmp_path / "resumed", config, progress=False, checkpoint_dir=tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "checkpoint.pt").exists()
    monkeypatch.setattr(torch.optim.AdamW, "step", real_step)

    resumed = train(tiny_model_dir, TEXTS, tmp_path / "resumed", config, progress=False,
                    checkpoint_dir=tmp_path / "ckpt")
    assert resumed.steps == straight.steps == 6
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-5)
    ours, reference = _weights(tmp_path / "resumed"), _weights(tmp_path / "straight")
    assert ours.keys() == reference.keys()
    for name in reference:
        assert torch.allclose(ours[name], reference[name], atol=1e-6), name
