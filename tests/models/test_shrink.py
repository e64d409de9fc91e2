"""A student cut from its teacher's layers: same vocabulary, fewer layers, the kept weights unchanged."""

import pytest
import torch
from transformers import AutoTokenizer

from wattlm.errors import WattError
from wattlm.models.hf import load_causal_lm
from wattlm.models.shrink import shrink_model, spread_layers
from wattlm.models.store import add_model
from wattlm.registry import Registry


def test_spread_keeps_first_and_last():
    assert spread_layers(18, 9) == [0, 2, 4, 6, 8, 11, 13, 15, 17]
    assert spread_layers(4, 2) == [0, 3] and spread_layers(4, 4) == [0, 1, 2, 3] and spread_layers(4, 1) == [3]
    with pytest.raises(WattError, match="between 1 and the model's 4 layers, got 5"):
        spread_layers(4, 5)


def test_shrunk_student_keeps_its_teachers_weights_and_runs(tiny_gemma, tmp_path):
    registry = Registry(tmp_path / "ws")
    teacher = add_model(registry, str(tiny_gemma), name="teacher", tier="task")
    student, reused = shrink_model(registry, teacher, 2, "student")
    assert not reused and student.tier == "task" and student.parents == [(teacher.id, "init")]
    assert student.meta["kept_layers"] == [0, 3] and student.metrics["layers"] == 2
    assert student.metrics["parameters"] < student.metrics["parent_parameters"]

    big, small = load_causal_lm(tiny_gemma), load_causal_lm(student.path)
    assert small.config.num_hidden_layers == 2
    assert small.config.layer_types == ["sliding_attention", "full_attention"]  # the pattern follows the layers
    big_state, small_state = big.state_dict(), small.state_dict()
    for name, value in small_state.items():
        source = name.replace("layers.1.", "layers.3.")  # student layer 1 is teacher layer 3
        assert torch.equal(value, big_state[source]), name
    # Same output as the teacher run with only layers 0 and 3, incremental decoding included.
    ids = torch.tensor([[5, 17, 42, 9, 100, 7, 3, 250, 11, 64, 8]])
    big.model.layers = torch.nn.ModuleList([big.model.layers[0], big.model.layers[3]])
    for index, layer in enumerate(big.model.layers):
        layer.self_attn.layer_idx = index
    big.config.num_hidden_layers, big.config.layer_types = 2, small.config.layer_types
    with torch.no_grad():
        assert torch.allclose(small(ids).logits, big(ids).logits, atol=1e-5)
        out = small.generate(ids, max_new_tokens=6, do_sample=False)
    assert out.shape == (1, ids.shape[1] + 6)
    assert AutoTokenizer.from_pretrained(student.path).get_vocab() == AutoTokenizer.from_pretrained(tiny_gemma).get_vocab()

    again, reused = shrink_model(registry, teacher, 2, "student")
    assert reused and again.id == student.id


def test_cli_shrinks_then_distills_from_the_parent(tiny_gemma, tmp_path):
    import json
    import subprocess
    import sys

    home = tmp_path / "ws"
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(4):
        (raw / f"doc{i}.txt").write_text(f"Feeder {i} tripped on overcurrent and the crew restored supply. " * 4)

    def watt(*args, as_json=True):
        cmd = [sys.executable, "-m", "wattlm.cli", *args, "--home", str(home)] + (["--json"] if as_json else [])
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if as_json else done.stdout + done.stderr

    watt("models", "add", str(tiny_gemma), "--name", "big")
    said = watt("models", "shrink", "big", "--layers", "2", as_json=False)
    assert "big-2l" in said and "2 of 4 layers" in said
    again = watt("models", "shrink", "big", "--layers", "2")
    assert again["reused"] and again["name"] == "big-2l" and again["layers"] == 2
    watt("data", "build", str(raw), "--out", str(tmp_path / "corpus"), "--name", "feeders", "--heldout-fraction",
         "0.25", "--no-quality-filters", "--no-near-dedup", "--min-chars", "20")
    student = watt("train", "--model", "big-2l", "--data", "feeders", "--name", "small", "--method", "distill",
                   "--teacher", "big", "--steps", "2", "--seq-len", "32", "--batch-size", "2")
    assert student["metrics"]["train_steps"] == 2
    chain = {a["name"]: a for a in watt("lineage", "small")["chain"]}
    roles = {(p["id"], p["role"]) for p in chain["small"]["parents"]}
    assert (chain["big"]["id"], "teacher") in roles and (chain["big-2l"]["id"], "parent") in roles
    assert chain["big-2l"]["parents"] == [{"id": chain["big"]["id"], "role": "init"}]


def test_calibrated_shrink_drops_the_block_that_changes_least(tiny_gemma, tmp_path):
    from wattlm.models.shrink import block_to_drop

    # Layers 1 and 2 write nothing into the residual stream: the block to drop.
    model = load_causal_lm(tiny_gemma)
    for index in (1, 2):
        layer = model.model.layers[index]
        torch.nn.init.zeros_(layer.self_attn.o_proj.weight)
        torch.nn.init.zeros_(layer.mlp.down_proj.weight)
    folder = tmp_path / "idle-middle"
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_gemma).save_pretrained(folder)
    ids = torch.randint(0, 300, (2, 16), generator=torch.Generator().manual_seed(0))
    assert block_to_drop(model, ids, 2) == 1

    registry = Registry(tmp_path / "ws")
    parent = add_model(registry, str(folder), name="idle", tier="industry")
    student, _ = shrink_model(registry, parent, 2, "idle-2l", calibration=ids)
    assert student.meta["kept_layers"] == [0, 3] and student.meta["selection"] == "least-change block"
    with torch.no_grad():  # the dropped layers did nothing, so the student computes what its parent did
        assert torch.allclose(load_causal_lm(student.path)(ids).logits, model(ids).logits, atol=1e-4)
