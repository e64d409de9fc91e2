"""Answer-first QA: passage clauses as answers, the teacher's one line as the question."""

from wattlm.synth.config import SynthConfig
from wattlm.synth.filters import check_item
from wattlm.synth.parsing import Item, parse_question
from wattlm.synth.spans import answer_spans, candidate_spans, phrase_spans

ZH = "三、融冰措施\n1. 直流融冰：对220千伏及以上重冰区线路，利用直流融冰装置融冰；\n2. 观冰人员每两小时报告一次覆冰厚度。"
EN = "Patrol staff check the barriers once a quarter. A barrier is installed every 50 metres; it is painted red."


def test_candidates_are_clauses_of_the_passage_without_list_numbers():
    spans = candidate_spans(ZH, "zh")
    assert "对220千伏及以上重冰区线路" in spans and "观冰人员每两小时报告一次覆冰厚度" in spans
    assert all(span in ZH for span in spans) and not any(span.startswith(("1.", "2.")) for span in spans)
    assert "融冰措施" not in spans  # too short to be an answer
    assert candidate_spans(EN, "en") == ["Patrol staff check the barriers once a quarter",
                                         "A barrier is installed every 50 metres", "it is painted red"]


def test_phrases_are_quantities_terms_and_clause_objects():
    zh = "二次调频由AGC系统实现，频率偏差控制在±0.2Hz以内；观冰人员每两小时报告一次，三次调整在十五分钟以上。"
    assert phrase_spans(zh, "zh") == ["AGC", "AGC系统实现", "0.2Hz以内", "每两小时", "十五分钟以上"]
    assert "二次" not in phrase_spans(zh, "zh") and "三次" not in phrase_spans(zh, "zh")  # names, not amounts
    assert phrase_spans("对220千伏设备", "zh") == ["220千伏"]  # not also "千伏"
    en = "Drones scan the corridor every two years. SCADA raises an alarm at 0.7 m."
    assert phrase_spans(en, "en") == ["every two years", "SCADA", "0.7 m"]


def test_spans_are_seeded_distinct_and_prefer_phrases_then_numbers():
    first = answer_spans(ZH, "zh", 2, seed=1)
    assert first == answer_spans(ZH, "zh", 2, seed=1) and len(set(first)) == 2
    assert first[0] == "220千伏"  # a phrase with a number comes first
    clauses = answer_spans(ZH, "zh", 2, seed=1, prefer="clause")
    assert "对220千伏及以上重冰区线路" in clauses  # the clause with a number comes first
    assert answer_spans(EN, "en", 1, seed=5, prefer="clause") == ["A barrier is installed every 50 metres"]
    assert answer_spans(EN, "en", 1, seed=5) == ["every 50 metres"]
    assert answer_spans("短。", "zh", 3, seed=0) == []
    assert candidate_spans("Keep at least 0.7 m from 11 kV parts at 10:30 daily.", "en") == [
        "Keep at least 0.7 m from 11 kV parts at 10:30 daily"]


def test_parse_question_takes_the_first_line():
    assert parse_question(" 观冰人员多久报告一次覆冰厚度？\n资料：…", "每两小时") == (
        [Item("观冰人员多久报告一次覆冰厚度？", "每两小时")], None)
    assert parse_question("\n\n", "x") == ([], "empty_reply")
    assert parse_question("问题：", "x") == ([], "missing_question")


def test_a_question_that_gives_its_answer_away_is_dropped():
    item = Item("观冰人员是否每两小时报告一次覆冰厚度？", "每两小时报告一次覆冰厚度")
    assert check_item(item, ZH, "qa", SynthConfig()) == "question_contains_answer"
    assert check_item(Item("观冰人员多久报告一次覆冰厚度？", "每两小时报告一次覆冰厚度"), ZH, "qa", SynthConfig()) is None
