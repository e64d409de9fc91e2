"""Checkpoints under `train.distributed.strategy: fsdp`: gathered to rank 0, resumed through torch's
state-dict API, refused in one line when they do not fit the model or the strategy.

The fast tests shard a small torch model in this process (a gloo group of one); the integration test
trains the tiny Llama on 2 torchrun processes (this file is also the worker it launches).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from wattlm.errors import WattError

torch = pytest.importorskip("torch")

TEXTS = ["Protection relays isolate faults within milliseconds to keep the grid stable. " * 5,
         "Operators verify voltage absence before grounding any conductor. " * 5] * 3
CONFIG = dict(steps=6, seq_len=32, batch_size=2, lr=5e-3, warmup_steps=1, bf16=False, save_every=2,
              distributed={"strategy": "fsdp"})
CRASH_AFTER = 3  # steps done when the run is killed: its last checkpoint is the one at step 2


@pytest.fixture
def one_process_group(tmp_path):
    """A gloo process group of one process, as torchrun would give a 1-process run (FSDP needs a mesh)."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


class Tiny(torch.nn.Module):
    """Frozen embedding, two sharded layers with frozen biases, a trainable head left whole (as the loop
    shards a decoder)."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.embed = torch.nn.Embedding(10, width).requires_grad_(False)
        self.layers = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in range(2))
        for layer in self.layers:
            layer.bias.requires_grad_(False)
        self.head = torch.nn.Linear(width, 3)

    def forward(self, tokens):
        hidden = self.embed(tokens)
        for layer in self.layers:
            hidden = torch.tanh(layer(hidden))
        return self.head(hidden).sum()


def _sharded(seed: int, width: int = 8):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    torch.manual_seed(seed)
    model = Tiny(width)
    mesh = init_device_mesh("cpu", (1,))
    for layer in model.layers:
        fully_shard(layer, mesh=mesh)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    return model, optimizer


def _step(model, optimizer):
    model(torch.arange(6)).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _whole(model) -> dict:
    from torch.distributed.tensor import DTensor

    return {name: (p.full_tensor() if isinstance(p, DTensor) else p).detach().clone()
            for name, p in model.named_parameters()}


def _save(folder, model, optimizer, step=2):
    from wattlm.train.dist import Dist
    from wattlm.train.fsdp_checkpoint import save_fsdp_checkpoint

    save_fsdp_checkpoint(folder, model, optimizer, Dist(), step=step, history={"losses": [2.0, 1.5]}, tokens=40,
                         seconds=1.5, rng_states=[torch.get_rng_state()])


def test_a_resumed_model_continues_like_the_one_that_saved(one_process_group, tmp_path):
    from wattlm.train.checkpoint import CHECKPOINT
    from wattlm.train.dist import Dist
    from wattlm.train.fsdp_checkpoint import load_fsdp_checkpoint

    model, optimizer = _sharded(seed=0)
    for _ in range(2):
        _step(model, optimizer)
    _save(tmp_path, model, optimizer)
    saved = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    # Trainable tensors only, whole (gathered from the shards); optimizer state keyed by name.
    assert sorted(saved["trainable"]) == ["head.bias", "head.weight", "layers.0.weight", "layers.1.weight"]
    assert saved["trainable"]["layers.0.weight"].shape == (8, 8)
    assert sorted(saved["optimizer"]["state"]) == sorted(saved["trainable"])

    fresh, fresh_optimizer = _sharded(seed=0)  # the same frozen weights, as a run reloads its parent
    with torch.no_grad():
        for p in fresh.parameters():
            if p.requires_grad:
                p.add_(1.0)
    assert not torch.equal(_whole(fresh)["layers.0.weight"], _whole(model)["layers.0.weight"])
    counters = load_fsdp_checkpoint(tmp_path, fresh, fresh_optimizer, Dist())
    assert counters == {"step": 2, "history": {"losses": [2.0, 1.5]}, "tokens": 40, "seconds": 1.5}
    for name, tensor in _whole(model).items():
        assert torch.equal(_whole(fresh)[name], tensor), name
    _step(model, optimizer)  # equal Adam moments and step counts: the next update is the same
    _step(fresh, fresh_optimizer)
    for name, tensor in _whole(model).items():
        assert torch.equal(_whole(fresh)[name], tensor), name


def test_no_checkpoint_means_a_fresh_start(one_process_group, tmp_path):
    from wattlm.train.dist import Dist
    from wattlm.train.fsdp_checkpoint import load_fsdp_checkpoint

    model, optimizer = _sharded(seed=0)
    assert load_fsdp_checkpoint(tmp_path / "absent", model, optimizer, Dist()) is None
    assert load_fsdp_checkpoint(None, model, optimizer, Dist()) is None


def test_a_checkpoint_of_another_model_is_refused_in_one_line(one_process_group, tmp_path):
    from wattlm.train.dist import Dist
    from wattlm.train.fsdp_checkpoint import load_fsdp_checkpoint

    model, optimizer = _sharded(seed=0, width=8)
    _step(model, optimizer)
    _save(tmp_path, model, optimizer)
    other, other_optimizer = _sharded(seed=0, width=6)
    with pytest.raises(WattError, match=r"does not match the model \(e\.g\. head\.weight: checkpoint \(3, 8\), "
                                        r"model \(3, 6\)\); delete that folder") as err:
        load_fsdp_checkpoint(tmp_path, other, other_optimizer, Dist())
    assert "\n" not in str(err.value)


def test_each_strategy_refuses_the_others_checkpoint(one_process_group, tmp_path):
    from wattlm.train.checkpoint import load_checkpoint, save_checkpoint
    from wattlm.train.dist import Dist
    from wattlm.train.fsdp_checkpoint import load_fsdp_checkpoint

    model, optimizer = _sharded(seed=0)
    _step(model, optimizer)
    _save(tmp_path / "fsdp", model, optimizer)
    plain = torch.nn.Linear(4, 2)
    plain_optimizer = torch.optim.AdamW(plain.parameters())
    with pytest.raises(WattError, match="written with train.distributed.strategy fsdp: resume it with that"):
        load_checkpoint(tmp_path / "fsdp", plain, plain_optimizer)
    save_checkpoint(tmp_path / "ddp", plain, plain_optimizer, step=1, history={}, tokens=1, seconds=0.1,
                    rng_states=[torch.get_rng_state()])
    with pytest.raises(WattError, match="written without train.distributed.strategy fsdp"):
        load_fsdp_checkpoint(tmp_path / "ddp", model, optimizer, Dist())


class Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('checkpoint code ran')",))


def test_a_checkpoint_with_code_in_it_is_refused(one_process_group, tmp_path):
    from wattlm.train.checkpoint import CHECKPOINT, FSDP_LAYOUT
    from wattlm.train.dist import Dist
    from wattlm.train.fsdp_checkpoint import load_fsdp_checkpoint

    torch.save({"layout": FSDP_LAYOUT, "payload": Boom()}, tmp_path / CHECKPOINT)
    model, optimizer = _sharded(seed=0)
    with pytest.raises(WattError, match="as plain tensors.*delete that folder"):
        load_fsdp_checkpoint(tmp_path, model, optimizer, Dist())


def _worker(model_dir: Path, out: Path) -> None:
    """Every torchrun process, for LoRA with dropout, a full fine-tune and LoRA without dropout: train
    straight; train and crash after CRASH_AFTER steps; resume. Then resume with a model the checkpoint
    does not fit. Rank 0 writes what it saw to out/seen.json."""
    from wattlm.train.config import TrainConfig
    from wattlm.train.dist import context
    from wattlm.train.loop import train

    dist = context()
    main = dist.is_main

    def crash(step):
        if step + 1 == CRASH_AFTER:
            raise KeyboardInterrupt("simulated kill")

    seen = {}
    # dropout: each process's RNG must survive; full: a full fine-tune (sharded layers, whole tied embedding)
    lora = {"dropout": {"r": 4, "alpha": 8, "dropout": 0.1}, "full": None, "plain": {"r": 4, "alpha": 8, "dropout": 0.0}}
    for name, adapters in lora.items():
        config = TrainConfig(**CONFIG, lora=adapters)
        straight = train(model_dir, TEXTS, out / f"{name}-straight" if main else None, config, progress=False)
        try:
            train(model_dir, TEXTS, None, config, progress=False, checkpoint_dir=out / f"{name}-ckpt", on_step=crash)
        except KeyboardInterrupt:
            pass
        if name == "plain":  # the step-2 checkpoint, for a resume on another process count (the test)
            seen[name] = {"straight": straight.losses}
            if main:
                (out / "plain-ckpt" / "checkpoint.pt").rename(out / "plain-step2.pt")
            break
        resumed = train(model_dir, TEXTS, out / f"{name}-resumed" if main else None, config, progress=False,
                        checkpoint_dir=out / f"{name}-ckpt")
        seen[name] = {"straight": straight.losses, "resumed": resumed.losses, "steps": resumed.steps}
    try:
        other = TrainConfig(**CONFIG, lora={"r": 8, "alpha": 8, "dropout": 0.1})
        train(model_dir, TEXTS, None, other, progress=False, checkpoint_dir=out / "dropout-ckpt")
    except WattError as err:
        seen[f"error{dist.rank}"] = str(err)
    errors = dist.gather_objects(seen.pop(f"error{dist.rank}", None))
    if main:
        (out / "seen.json").write_text(json.dumps({**seen, "errors": errors}))
    dist.leave()  # frees the runs' sharded models (reference cycles through FSDP hooks) first
    dist.exit_worker()  # every result is on disk: no interpreter teardown after gloo (see exit_worker)


@pytest.mark.integration  # two torchrun processes, eight short runs: about a minute on 2 loaded cores
def test_fsdp_run_killed_and_resumed_ends_like_one_that_never_stopped(tiny_model_dir, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from wattlm.train.config import TrainConfig
    from wattlm.train.loop import train

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[2] / "src"),
                                                       os.environ.get("PYTHONPATH")]))}
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         __file__, str(tiny_model_dir), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    seen = json.loads((tmp_path / "seen.json").read_text())
    for run in ("dropout", "full"):
        assert seen[run]["steps"] == 6
        assert seen[run]["resumed"] == pytest.approx(seen[run]["straight"], rel=1e-5)
        resumed, straight = load_file(tmp_path / f"{run}-resumed" / "model.safetensors"), \
            load_file(tmp_path / f"{run}-straight" / "model.safetensors")
        assert resumed.keys() == straight.keys()
        for name in straight:  # weights (LoRA merged), Adam moments and dropout streams all came back
            assert torch.allclose(resumed[name], straight[name], atol=1e-6), (run, name)
    # A checkpoint of r=4 adapters against an r=8 model: every process stops with the same one line.
    first, second = seen["errors"]
    assert first == second and "\n" not in first
    assert re.search(r"does not match the model \(e\.g\. base_model\.model\.model\.layers\.0\.\S+\.lora_A\.default\.weight: "
                     r"checkpoint \(4, \d+\), model \(8, \d+\)\); delete that folder", first), first

    # The 2-process checkpoint resumes on 1 process (the full state dict fits any mesh); without
    # dropout the curve is the 2-process run's.
    (tmp_path / "plain-ckpt").mkdir(exist_ok=True)
    (tmp_path / "plain-step2.pt").rename(tmp_path / "plain-ckpt" / "checkpoint.pt")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        config = TrainConfig(**CONFIG, lora={"r": 4, "alpha": 8, "dropout": 0.0})
        alone = train(tiny_model_dir, TEXTS, tmp_path / "plain-resumed", config, progress=False,
                      checkpoint_dir=tmp_path / "plain-ckpt")
    finally:
        dist.destroy_process_group()
    two = load_file(tmp_path / "plain-straight" / "model.safetensors")
    one = load_file(tmp_path / "plain-resumed" / "model.safetensors")
    assert alone.steps == 6 and alone.losses == pytest.approx(seen["plain"]["straight"], rel=1e-5)
    for name in two:
        assert torch.allclose(one[name], two[name], atol=1e-5), name


if __name__ == "__main__":  # launched by the integration test under torchrun
    _worker(Path(sys.argv[1]), Path(sys.argv[2]))
