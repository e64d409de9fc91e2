import json

from transformers import AutoModelForCausalLM

from wattlm.train.config import LoraSettings, TrainConfig
from wattlm.train.loop import train

TEXTS = ["The breaker trips when the relay sees an overcurrent on feeder seven. " * 6,
         "Dispatchers balance load and generation every minute of the day. " * 6] * 4


def test_lora_cpt_lowers_loss_and_saves_merged_model(tiny_model_dir, tmp_path):
    config = TrainConfig(steps=30, seq_len=32, batch_size=4, lr=5e-3, warmup_steps=2, bf16=False,
                         lora=LoraSettings(r=8, alpha=16, dropout=0.0))
    result = train(tiny_model_dir, TEXTS, tmp_path, config, progress=False)
    metrics = result.metrics()
    assert metrics["train_steps"] == 30 and metrics["train_tokens"] == 30 * 4 * 32
    assert metrics["train_loss_end"] < metrics["train_loss_start"] - 0.5
    # The merged model is a plain HF model (no LoRA modules) that reloads.
    merged = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert not any("lora" in name for name, _ in merged.named_parameters())
    assert json.loads((tmp_path / "train_config.json").read_text())["steps"] == 30
    assert len(json.loads((tmp_path / "train_log.json").read_text())["losses"]) == 30


def test_full_finetune_with_bf16_autocast(tiny_model_dir, tmp_path):
    config = TrainConfig(steps=12, seq_len=32, batch_size=2, lr=3e-3, warmup_steps=1, bf16=True, lora=None)
    result = train(tiny_model_dir, TEXTS, tmp_path, config, progress=False)
    assert result.metrics()["train_loss_end"] < result.metrics()["train_loss_start"]


def test_training_report_and_log(tiny_model_dir, tmp_path, capsys):
    config = TrainConfig(steps=10, seq_len=32, batch_size=2, lr=3e-3, warmup_steps=1, bf16=False, lora=None)
    train(tiny_model_dir, TEXTS, tmp_path, config, progress=True)
    log = json.loads((tmp_path / "train_log.json").read_text())
    assert len(log["losses"]) == len(log["step_seconds"]) == 10
    assert log["data"]["blocks"] > 0 and log["processes"] == 1 and log["train_tokens_per_s"] > 0
    report = (tmp_path / "train_report.html").read_text()
    curve = report.split('aria-label="training loss"')[1].split("</svg>")[0]
    assert curve.count(",") == 10  # one x,y point per step in the loss polyline
    assert "step time" in report and "tokens/s" in report and "seq_len" in report and "blocks" in report
    # Without a terminal the progress is plain lines with loss, throughput and the time left.
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("train step")]
    assert lines[-1].startswith("train step 10/10 loss") and "tok/s eta 0:00" in lines[-1]


def test_step_hook_and_cpu_time_per_step(tiny_model_dir):
    seen = []
    config = TrainConfig(steps=3, seq_len=32, batch_size=2, lr=3e-3, warmup_steps=1, bf16=True, save_every=0)
    result = train(tiny_model_dir, TEXTS, None, config, progress=False, on_step=seen.append)
    assert seen == [0, 1, 2]
    assert len(result.step_cpu_seconds) == len(result.step_seconds) == 3
    assert all(cpu > 0 for cpu in result.step_cpu_seconds)
