"""A new training method is one file plus one table entry, and `watt train --method` runs it end to end."""

import json

import pytest
from typer.testing import CliRunner

from tests.train.first_half_method import FirstHalfMethod
from wattlm.cli import app
from wattlm.registry import Registry
from wattlm.train.methods import METHODS

FIRST = "Protection relays isolate faults within milliseconds to keep the grid stable. " * 6
SECOND = "Operators verify voltage absence before grounding any conductor. " * 6


@pytest.fixture
def toy_method(monkeypatch):
    monkeypatch.setitem(METHODS, "first-half", FirstHalfMethod)  # the one table entry


def _watt(*args):
    return CliRunner().invoke(app, [*args, "--json"])


def test_toy_method_trains_through_the_cli(toy_method, tiny_model_dir, tmp_path):
    home = tmp_path / "ws"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(FIRST + SECOND)
    added = _watt("models", "add", str(tiny_model_dir), "--name", "tiny", "--home", str(home))
    assert added.exit_code == 0, added.output
    done = _watt("train", "--model", "tiny", "--data", str(corpus), "--name", "tiny-heads", "--method", "first-half",
                 "--set", "share=0.5", "--steps", "3", "--seq-len", "32", "--batch-size", "2", "--home", str(home),
                 "--quiet")
    assert done.exit_code == 0, done.output
    row = json.loads(done.output)
    assert row["metrics"]["train_steps"] == 3 and row["metrics"]["train_loss_start"] > 0

    model = Registry(home).get("tiny-heads", kind="model")
    assert model.meta["method"] == "first-half" and model.tier == "industry"
    assert model.recipe["train"]["method"] == "first-half" and model.recipe["train"]["share"] == 0.5
    log = json.loads((model.path / "train_log.json").read_text())
    assert len(log["losses"]) == 3
    assert log["data"]["trained_chars"] == len(FIRST + SECOND) // 2  # its own stats reach the report


def test_toy_method_fields_are_validated_by_its_settings(toy_method, tiny_model_dir, tmp_path):
    args = ["train", "--model", "tiny", "--data", str(tmp_path), "--name", "x", "--method", "first-half",
            "--home", str(tmp_path / "ws")]
    typo = _watt(*args, "--set", "shar=0.5")
    assert typo.exit_code != 0 and "shar: unknown field for method first-half" in str(typo.exception)
    out_of_range = _watt(*args, "--set", "share=2")
    assert out_of_range.exit_code != 0 and "share" in str(out_of_range.exception)


def test_unregistered_method_is_refused_with_the_table():
    done = _watt("train", "--model", "m", "--data", "d", "--name", "x", "--method", "first-half")
    assert done.exit_code != 0 and "one of cpt, sft, distill" in str(done.exception)
