"""A new task kind is one file plus one table entry: `watt eval run` scores it, `watt eval compare` shows
it with its declared direction, and a gate on it follows that direction."""

import json

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from tests.eval.length_task import AnswerLengthTask
from wattlm.cli import app
from wattlm.eval.compare import model_scores
from wattlm.eval.gates import Gate, check_gates
from wattlm.eval.tasks import TASKS
from wattlm.registry import Registry


@pytest.fixture
def length_kind(monkeypatch):
    monkeypatch.setitem(TASKS, "length", AnswerLengthTask)  # the one table entry


def _watt(*args):
    done = CliRunner().invoke(app, [*args, "--json"])
    assert done.exit_code == 0, done.output
    return json.loads(done.output)


def test_toy_task_kind_runs_compares_and_gates(length_kind, tiny_model_dir, tmp_path):
    home = ["--home", str(tmp_path / "ws")]
    toy = tmp_path / "toy.jsonl"
    toy.write_text("\n".join(json.dumps({"prompt": p}) for p in ["Name a relay.", "What is a feeder?"]) + "\n")
    _watt("models", "add", str(tiny_model_dir), "--name", "tiny", *home)
    _watt("models", "add", str(tiny_model_dir), "--name", "tiny-b", "--tier", "industry", *home)

    rows = _watt("eval", "run", "--model", "tiny", "--task", str(toy), "--max-new-tokens", "8", *home)
    assert rows[0]["kind"] == "length" and rows[0]["scores"]["length:toy:chars"] >= 0

    compared = _watt("eval", "compare", "tiny", "tiny-b", "--task", str(toy), "--max-new-tokens", "8",
                     "--out", str(tmp_path / "cmp.html"), *home)
    assert compared["metrics"] == ["length:toy:chars"] and compared["better"] == {"length:toy:chars": "lower"}
    assert "length:toy:chars (lower is better)" in (tmp_path / "cmp.html").read_text()

    registry = Registry(tmp_path / "ws")
    scores = {"parent": model_scores(registry.get("tiny")), "child": model_scores(registry.get("tiny-b"))}
    chars = scores["child"]["length:toy:chars"]
    same = check_gates([Gate(metric="length_chars", max_value=chars + 1)], scores, child="child", parent="parent")
    assert same[0]["passed"] and same[0]["child"] == same[0]["parent"] == chars  # the same weights score alike

    # The declared direction decides: a shorter child passes an upper limit, a longer one fails it.
    gate = Gate(metric="length_chars", max_ratio=0.8)
    short = {"parent": {"length:toy:chars": 10.0}, "child": {"length:toy:chars": 7.0}}
    long = {"parent": {"length:toy:chars": 10.0}, "child": {"length:toy:chars": 9.0}}
    assert check_gates([gate], short, child="child", parent="parent")[0]["passed"]
    failed = check_gates([gate], long, child="child", parent="parent")[0]
    assert not failed["passed"] and failed["message"] == "child length_chars 9.00 > 0.8 x parent 10.00 = 8.00"
    with pytest.raises(ValidationError, match="max_ratio or max_value"):
        Gate(metric="length_chars", min_delta=1)  # a lower-is-better metric takes upper limits


def test_unregistered_kind_is_not_a_gate_metric():
    with pytest.raises(ValidationError, match="unknown metric 'length_chars'"):
        Gate(metric="length_chars", max_value=1)


def test_recipe_gate_on_the_toy_kind_needs_its_task_files(length_kind, tmp_path):
    from wattlm.errors import WattError
    from wattlm.recipe import load_recipe

    (tmp_path / "raw").mkdir()
    (tmp_path / "toy.jsonl").write_text('{"prompt": "Name a relay."}\n')
    gate = "gates: [{metric: length_chars, max_ratio: 1.2}]\n"
    path = tmp_path / "r.yaml"
    path.write_text("name: x\ndata: {inputs: [raw]}\neval: {tasks: [toy.jsonl]}\n" + gate)
    assert load_recipe(path).gates[0].lower_is_better
    path.write_text("name: x\ndata: {inputs: [raw]}\n" + gate)
    with pytest.raises(WattError, match="need eval.tasks"):
        load_recipe(path)
