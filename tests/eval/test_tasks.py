import pytest

from wattlm.eval import multiple_choice
from wattlm.eval.generative_qa import GenerativeQATask, QAItem
from wattlm.eval.lm import Continuation
from wattlm.eval.multiple_choice import ChoiceItem, MultipleChoiceTask
from wattlm.models.hf import load_causal_lm, load_tokenizer

ITEMS = [
    ChoiceItem("问题：电网额定频率？\n答案：", ["50赫兹", "60赫兹", "一百二十五赫兹以上"], 0),
    ChoiceItem("问题：主变油温？\n答案：", ["85度", "很长的一个错误答案文本"], 1),
]


def test_acc_and_acc_norm_hand_computed():
    task = MultipleChoiceTask("t", ITEMS)
    # Item 1 (gold 0): raw -1 is best; per character -1/4 beats -5/4 and -9/9: both right.
    # Item 2 (gold 1, 11 characters): raw picks choice 0 (-2 > -5.5), per character -5.5/11 = -0.5
    # beats -2/3: only acc_norm is right.
    scores = task.score([-1.0, -5.0, -9.0, -2.0, -5.5])
    assert scores["acc"] == 50.0 and scores["acc_norm"] == 100.0
    assert scores["chance"] == pytest.approx(100 * (1 / 3 + 1 / 2) / 2)


def test_mc_forced_by_a_scoring_function(monkeypatch):
    """The log-likelihood function decides: the answer always scores highest, so acc is 100."""
    seen = []

    def fake(model, tokenizer, requests, batch_size=8):
        seen.extend(requests)
        golds = {item.prompt + item.choices[item.answer] for item in ITEMS}
        return [Continuation(-1.0 if c + k in golds else -9.0, False, 1) for c, k in requests]

    monkeypatch.setattr(multiple_choice, "loglikelihoods", fake)
    scores = MultipleChoiceTask("t", ITEMS).evaluate(model=None, tokenizer=None)
    assert scores["acc"] == 100.0 and scores["acc_norm"] == 100.0
    assert len(seen) == 5 and seen[0] == (ITEMS[0].prompt, "50赫兹")


def test_mc_on_a_real_tiny_model_is_deterministic(tiny_model_dir):
    model, tokenizer = load_causal_lm(tiny_model_dir), load_tokenizer(tiny_model_dir)
    task = MultipleChoiceTask("t", ITEMS, batch_size=2)
    first, second = task.evaluate(model, tokenizer), task.evaluate(model, tokenizer)
    assert first == second and first["acc"] in (0.0, 50.0, 100.0)


def test_qa_scores_predictions_and_cuts_at_stop_strings(monkeypatch):
    from wattlm.eval import generative_qa

    items = [QAItem("材料：……\n问题：额定电压？\n答案：", ["110千伏"]), QAItem("Q: color?\nA:", ["red", "crimson"])]
    monkeypatch.setattr(generative_qa, "greedy_generate",
                        lambda model, tok, prompts, **kw: ["110千伏", "crimson. Q: next"])
    task = GenerativeQATask("qa", items, stop=(". Q:",))
    scores = task.evaluate(None, None)
    assert task.predictions == ["110千伏", "crimson"]
    assert scores == {"exact_match": 100.0, "char_f1": 100.0, "rouge_l": 100.0}
    half = task.score(["110", "blue"])  # "110" vs 110千伏: units [110] vs [110, 千, 伏]: F1 = 0.5
    assert half["char_f1"] == pytest.approx(25.0) and half["exact_match"] == 0.0


def test_content_hash_follows_items_and_settings():
    a = GenerativeQATask("qa", [QAItem("p", ["x"])])
    assert a.content_hash() == GenerativeQATask("qa", [QAItem("p", ["x"])]).content_hash()
    assert a.content_hash() != GenerativeQATask("qa", [QAItem("p", ["y"])]).content_hash()
    assert a.content_hash() != GenerativeQATask("qa", [QAItem("p", ["x"])], max_new_tokens=5).content_hash()
