"""`train.distributed`: settings, and FSDP (torch's fully_shard) on 2 CPU processes under gloo."""

import json
import os
import subprocess
import sys

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file

from wattlm.errors import WattError
from wattlm.train.config import TrainConfig
from wattlm.train.dist import Dist
from wattlm.train.distributed import process_group_backend, shard_model, uses_fsdp

TEXT = ("Protection relays isolate faults within milliseconds to keep the grid stable. "
        "Operators verify voltage absence before grounding any conductor. ") * 20
CONFIG = {"steps": 5, "seq_len": 32, "batch_size": 4, "lr": 5e-3, "warmup_steps": 1, "bf16": False,
          "save_every": 0, "lora": {"r": 4, "alpha": 8, "dropout": 0.0}}


def test_settings_parse_and_validate():
    assert TrainConfig().distributed is None and not uses_fsdp(TrainConfig())
    config = TrainConfig(distributed={"strategy": "fsdp", "reshard_after_forward": False})
    assert uses_fsdp(config) and config.distributed.reshard_after_forward is False
    assert not uses_fsdp(TrainConfig(distributed={"strategy": "ddp"}))
    with pytest.raises(ValidationError, match="strategy"):
        TrainConfig(distributed={"strategy": "zero3"})
    with pytest.raises(ValidationError, match="distributed.shards"):
        TrainConfig(distributed={"strategy": "fsdp", "shards": 2})


def test_cpu_only_machines_keep_gloo(monkeypatch):
    assert process_group_backend() == "gloo"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert process_group_backend() == "cpu:gloo,cuda:nccl"


def test_ddp_and_no_section_leave_the_parameters_alone():
    model = torch.nn.Linear(2, 2)
    model.bias.requires_grad_(False)
    for config in (TrainConfig(), TrainConfig(distributed={"strategy": "ddp"})):
        assert shard_model(model, config, Dist()) == [model.weight]


def _train_args(home, tmp_path, config_name, parent_id):
    return ["train", "--model", parent_id, "--data", str(tmp_path / "corpus.txt"), "--name", "tiny-trained",
            "--config", str(tmp_path / config_name), "--home", str(home), "--json", "--quiet"]


@pytest.mark.integration  # two torchrun processes: about a minute on 2 loaded cores
@pytest.mark.parametrize("lora", [True, False])
def test_fsdp_two_processes_train_like_one(tiny_model_dir, tmp_path, lora):
    from typer.testing import CliRunner

    from wattlm.cli import app
    from wattlm.models.store import add_model
    from wattlm.registry import Registry

    (tmp_path / "corpus.txt").write_text(TEXT)
    config = dict(CONFIG, **({} if lora else {"lora": None}))
    (tmp_path / "one.json").write_text(json.dumps(config))
    (tmp_path / "fsdp.json").write_text(json.dumps({**config, "distributed": {"strategy": "fsdp"}}))
    one_home, two_home = tmp_path / "one", tmp_path / "two"
    parent_one = add_model(Registry(one_home), str(tiny_model_dir), name="tiny")
    parent_two = add_model(Registry(two_home), str(tiny_model_dir), name="tiny")
    alone = CliRunner().invoke(app, _train_args(one_home, tmp_path, "one.json", parent_one.id))
    assert alone.exit_code == 0, alone.output

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "wattlm.cli", *_train_args(two_home, tmp_path, "fsdp.json", parent_two.id)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert launched.returncode == 0, f"stdout: {launched.stdout[-2000:]}\nstderr: {launched.stderr[-8000:]}"
    one = Registry(one_home).get("tiny-trained", kind="model")
    two = Registry(two_home).get("tiny-trained", kind="model")
    assert two.meta["processes"] == 2
    log_one = json.loads((one.path / "train_log.json").read_text())
    log_two = json.loads((two.path / "train_log.json").read_text())
    # Sharded layers, summed (not averaged) gradients and the global-norm clip: the same curve as one process.
    assert log_two["losses"] == pytest.approx(log_one["losses"], rel=1e-5)
    weights_one, weights_two = load_file(one.path / "model.safetensors"), load_file(two.path / "model.safetensors")
    assert weights_one.keys() == weights_two.keys()
    for name in weights_one:  # the saved model is whole (gathered from the shards), LoRA merged
        assert torch.allclose(weights_one[name], weights_two[name], atol=1e-5), name


def test_recipe_train_section_takes_the_placement_fields(tmp_path):
    from wattlm.recipe import load_recipe

    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "doc.txt").write_text(TEXT)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: grid\nfoundation: smollm2-135m\ndata: {inputs: [raw]}\n"
                      "train: {steps: 3, device: cpu, gradient_checkpointing: true, save_every: 0,\n"
                      "        distributed: {strategy: fsdp, reshard_after_forward: false}}\n")
    config = load_recipe(recipe).train.train_config()
    assert config.device == "cpu" and config.gradient_checkpointing and uses_fsdp(config)
    assert config.distributed.reshard_after_forward is False
    recipe.write_text(recipe.read_text().replace("strategy: fsdp", "strategy: zero3"))
    with pytest.raises(WattError, match="strategy"):
        load_recipe(recipe)
