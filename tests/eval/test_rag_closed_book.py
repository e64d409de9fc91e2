"""The kinds of a closed-book answer (eval/closed_book.py) that bench/refusal_bench.py counts."""

from __future__ import annotations

import pytest

from wattlm.eval.closed_book import answer_kind, echo_share, is_debris, is_echo, mentions_refusal, repeats
from wattlm.shared.refusal import REFUSALS

Q = "红烧肉怎么做才不油腻？"


@pytest.mark.parametrize(("answer", "question", "kind"), [
    (REFUSALS["zh"], Q, "refusal"),
    ("资料中没有找到相关内容。红烧肉", Q, "refusal"),  # starts with the refusal
    (REFUSALS["en"], "How do I train a puppy?", "refusal"),
    ("", Q, "empty"),
    ("？？……", Q, "empty"),
    (Q, Q, "echo"),  # the demo task model's answer, word for word
    (Q * 3, Q, "echo"),  # said three times: still every unit is the question's
    ("红烧肉怎么做", Q, "echo"),
    ("紧紧紧紧紧", Q, "debris"),  # one unit repeated
    ("ЖЖЮ ฿ฺ ▁▁", Q, "debris"),  # other scripts and symbols
    ("▁▁ ◆◆ ▲", Q, "debris"),  # symbols only
    ("黑▁▁◆◆▲▲", Q, "debris"),  # mostly symbols
    ("先焯水再小火慢炖", Q, "answer"),  # an invented answer: not an echo, not debris
    ("1500IU", "成年人每天补充多少维生素D？", "answer"),  # digits and a unit are not debris
    ("Use a crate and reward calm play.", "How do I train a puppy to stop biting?", "answer"),
    ("AGC系统", "二次调频由哪个系统实现？", "answer"),  # mixed script, mostly hanzi letters: fine
])
def test_answer_kinds(answer, question, kind):
    assert answer_kind(answer, question) == kind


def test_echo_needs_most_of_the_answer_from_the_question():
    assert echo_share("红烧肉", Q) == 1.0
    assert echo_share("红烧肉要焯水", Q) == pytest.approx(3 / 6)
    assert not is_echo("红烧肉要焯水", Q)
    assert not is_echo("肉", Q)  # one unit is too little to call an echo
    assert echo_share("", Q) == 0.0


def test_debris_is_what_is_neither_cjk_nor_latin():
    assert not is_debris("xqz abc")  # Latin: an invention perhaps, but words
    assert not is_debris("AGC系统 35kV")
    assert is_debris("ЖЖЮЖ")
    assert is_debris("dog dog dog dog")  # repetition is debris in any script


def test_a_refusal_glued_to_an_answer_is_mentioned_but_not_a_refusal():
    glued = "50Hz资料中没有找到相关内容。"
    assert answer_kind(glued, "我国电网的额定频率是多少？") == "answer" and mentions_refusal(glued)
    assert mentions_refusal("红烧肉中没有找到相关内容。") and mentions_refusal(REFUSALS["en"])
    assert not mentions_refusal("50Hz") and not mentions_refusal("资料中没有")


def test_repeats_counts_consecutive_units_only():
    assert repeats("好好好好")
    assert not repeats("好好好")
    assert not repeats("好坏好坏好坏好坏")


def test_the_benchmark_out_of_scope_questions_are_not_training_refusals():
    """bench/refusal_bench.py asks these closed-book; the refusal training data must not hold them."""
    from pathlib import Path

    from wattlm.shared.records import read_records
    from wattlm.shared.text import char_f1
    from wattlm.synth.refusals import OFF_TOPIC_EN, OFF_TOPIC_ZH

    holdout = Path(__file__).resolve().parents[2] / "examples" / "power-grid" / "kb-holdout"
    asked = [r["question"] for r in read_records(holdout / "closed_book_out_of_scope.jsonl")]
    asked += [r["question"] for r in read_records(holdout / "rag.jsonl") if r["source"] is None]
    assert len(asked) >= 16 and len(set(asked)) == len(asked)
    for question in asked:
        for trained in (*OFF_TOPIC_ZH, *OFF_TOPIC_EN):
            assert char_f1(question, trained) < 50, (question, trained)
