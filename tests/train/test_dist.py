"""Data parallelism: torchrun with 2 CPU processes (gloo) trains like one process on the same batches.

torchrun runs the `watt train` verb itself (`-m wattlm.cli train ...`): there is no second CLI for it."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from wattlm.train.dist import Dist

TEXT = ("Protection relays isolate faults within milliseconds to keep the grid stable. "
        "Operators verify voltage absence before grounding any conductor. ") * 20
CONFIG = {"steps": 6, "seq_len": 32, "batch_size": 4, "lr": 5e-3, "warmup_steps": 1, "bf16": False,
          "save_every": 0, "lora": {"r": 4, "alpha": 8, "dropout": 0.0}}


def test_shard_splits_rows_and_tuples():
    batch = torch.arange(10).view(5, 2)
    rows = [Dist(rank, 2).shard(batch) for rank in range(2)]
    assert torch.equal(torch.cat(rows), batch) and rows[0].size(0) == 3
    ids, labels = Dist(1, 2).shard((batch, batch + 100))
    assert torch.equal(ids + 100, labels)
    assert Dist().shard(batch) is batch


def test_exit_worker_ends_only_a_torchrun_process(monkeypatch):
    import wattlm.train.dist as dist_module

    ended = []

    def fake_exit(code):
        ended.append(code)
        raise SystemExit(code)  # the real one never returns

    monkeypatch.setattr(dist_module.os, "_exit", fake_exit)
    Dist().exit_worker()  # one process: returns, the interpreter exits as usual
    assert ended == []
    with pytest.raises(SystemExit):
        Dist(rank=1, world=2).exit_worker()
    assert ended == [0]


QA = [{"prompt": f"Which feeder trips at {amps} A?", "response": f"Feeder {n} trips at {amps} A" + " exactly" * n * n}
      for n, amps in enumerate([120, 250, 300, 410, 520, 640, 700], 1)]  # answers of uneven length


def _setup(home, tiny_model_dir, tmp_path, method):
    from wattlm.models.store import add_model
    from wattlm.registry import Registry

    registry = Registry(home)
    parent = add_model(registry, str(tiny_model_dir), name="tiny")
    (tmp_path / "corpus.txt").write_text(TEXT)
    (tmp_path / "qa.jsonl").write_text("\n".join(json.dumps(row) for row in QA))
    config = dict(CONFIG)
    if method == "distill":  # chat data: the shards hold different numbers of answer tokens
        config.update(method="distill", kd_data="chat", chat_template="chatml", teacher=str(tiny_model_dir),
                      kd_alpha=0.5, lora=None, seq_len=96)
    (tmp_path / "train.json").write_text(json.dumps(config))
    return registry, parent


def _args(parent, tmp_path, home, method):
    data = tmp_path / ("qa.jsonl" if method == "distill" else "corpus.txt")
    return ["train", "--model", parent.id, "--data", str(data), "--name", "tiny-trained",
            "--config", str(tmp_path / "train.json"), "--home", str(home), "--json", "--quiet"]


@pytest.mark.parametrize("method", ["cpt", "distill"])
def test_torchrun_two_processes_match_one(tiny_model_dir, tmp_path, method):
    from typer.testing import CliRunner

    from wattlm.cli import app
    from wattlm.registry import Registry

    one_home, two_home = tmp_path / "one", tmp_path / "two"
    _, parent = _setup(one_home, tiny_model_dir, tmp_path, method)
    alone = CliRunner().invoke(app, _args(parent, tmp_path, one_home, method))
    assert alone.exit_code == 0, alone.output
    _, parent_two = _setup(two_home, tiny_model_dir, tmp_path, method)

    # PYTHONFAULTHANDLER: a rank that dies on a signal (SIGABRT from C++) prints every thread's Python stack.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "wattlm.cli", *_args(parent_two, tmp_path, two_home, method)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert launched.returncode == 0, f"stdout: {launched.stdout[-2000:]}\nstderr: {launched.stderr[-8000:]}"
    printed = json.loads(launched.stdout)  # only rank 0 reports: one JSON document
    assert printed["name"] == "tiny-trained" and printed["metrics"]["train_steps"] == CONFIG["steps"]

    one = Registry(one_home).get("tiny-trained", kind="model")
    two = Registry(two_home).get("tiny-trained", kind="model")
    assert [m.name for m in Registry(two_home).list("model")].count("tiny-trained") == 1  # registered once
    assert two.meta["processes"] == 2 and one.meta["processes"] == 1
    log_one = json.loads((one.path / "train_log.json").read_text())
    log_two = json.loads((two.path / "train_log.json").read_text())
    assert log_two["train_tokens"] == log_one["train_tokens"]
    assert log_two["parts"].keys() == log_one["parts"].keys() == ({"kl", "ce"} if method == "distill" else set())
    # Same data order and normalisation: the curves agree up to float summation order.
    # Measured: they agree to ~1e-7 relative. Without the gradient sum (cpt), or normalising each shard by
    # its own answer count (distill on chat), they part by 1e-3 to 4e-3.
    assert log_two["losses"] == pytest.approx(log_one["losses"], rel=1e-5)
    weights_one, weights_two = load_file(one.path / "model.safetensors"), load_file(two.path / "model.safetensors")
    for name in weights_one:
        assert torch.allclose(weights_one[name], weights_two[name], atol=1e-5), name
