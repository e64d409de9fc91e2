import pytest

from wattlm.errors import WattError
from wattlm.eval.generative_qa import GenerativeQATask, QAItem
from wattlm.eval.multiple_choice import ChoiceItem, MultipleChoiceTask
from wattlm.eval.runner import evaluate_model, evaluate_with_parent, parent_model
from wattlm.models.store import add_model
from wattlm.registry import Registry


def _tasks():
    mc = MultipleChoiceTask("grid-mc", [ChoiceItem("问题：频率？\n答案：", ["50赫兹", "60赫兹"], 0)])
    qa = GenerativeQATask("grid-qa", [QAItem("问题：频率？\n答案：", ["50赫兹"])], max_new_tokens=4)
    return [mc, qa]


def test_scores_are_stored_under_stable_names_and_reused(home, tiny_model_dir):
    registry = Registry()
    model = add_model(registry, str(tiny_model_dir), name="tiny")
    first = evaluate_model(registry, model, _tasks())
    assert not any(r.reused for r in first)
    stored = registry.get(model.id).metrics
    assert {"mc:grid-mc:acc", "mc:grid-mc:acc_norm", "qa:grid-qa:char_f1", "qa:grid-qa:rouge_l",
            "qa:grid-qa:exact_match"} <= set(stored)
    assert stored["mc:grid-mc"]["items"] == 1 and "key" in stored["qa:grid-qa"]

    def no_load(registry, model):
        raise AssertionError("a cached score must not load the model")

    again = evaluate_model(registry, registry.get(model.id), _tasks(), loader=no_load)
    assert all(r.reused for r in again)
    assert [r.scores for r in again] == [r.scores for r in first]


def test_changed_task_is_recomputed(home, tiny_model_dir):
    registry = Registry()
    model = add_model(registry, str(tiny_model_dir), name="tiny")
    evaluate_model(registry, model, _tasks())
    changed = GenerativeQATask("grid-qa", [QAItem("问题：频率？\n答案：", ["60赫兹"])], max_new_tokens=4)
    [result] = evaluate_model(registry, registry.get(model.id), [changed])
    assert not result.reused


def test_model_beside_its_parent(home, tiny_model_dir):
    registry = Registry()
    parent = add_model(registry, str(tiny_model_dir), name="base")
    child = registry.register("model", "child", path=tiny_model_dir, tier="industry", format="hf",
                              parents=[(parent.id, "parent")])
    assert parent_model(registry, child).id == parent.id
    with pytest.raises(WattError, match="no parent"):
        parent_model(registry, parent)
    scores = evaluate_with_parent(registry, child, _tasks()[:1])
    # Same weights under two artifacts: the same numbers, each stored on its own artifact.
    assert scores["child"] == scores["parent"] and "mc:grid-mc:acc" in scores["child"]
    assert "mc:grid-mc:acc" in registry.get(parent.id).metrics
