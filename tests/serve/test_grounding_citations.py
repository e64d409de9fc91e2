"""The answer–passage check: which passages an answer draws on, marker numbering, refusal."""

from __future__ import annotations

from wattlm.serve.citations import SUPPORT_THRESHOLD, check_answer, clause_of, finish_answer, overlap, refusal

BATTERY = "蓄电池室管理规定\n蓄电池室温度应保持在15至30摄氏度之间，每日记录一次。"
FIRE = "消防规定\n电气设备着火时，应立即切断电源，再用干粉灭火器灭火。"
RELAY = "Distance relay routine test\nZone 1 must trip within 30 ms during the routine test."


def test_overlap_counts_content_units_not_function_words():
    assert overlap("温度应保持在15至30摄氏度之间", BATTERY) == 1.0
    assert overlap("the of is", RELAY) == 0.0  # only function words: nothing to check
    assert overlap("Zone 1 trips within 30 ms", RELAY) >= SUPPORT_THRESHOLD
    assert overlap("红烧肉要用冰糖炒出糖色", BATTERY) < SUPPORT_THRESHOLD
    assert overlap("Paris is the capital of France", RELAY) < SUPPORT_THRESHOLD


def test_an_unmarked_answer_gets_the_markers_of_its_passages():
    checked = check_answer("15至30摄氏度", [FIRE, BATTERY], "蓄电池室温度应保持在多少？")
    assert (checked.text, checked.cited, checked.refused) == ("15至30摄氏度[1]", [1], False)
    english = check_answer("within 30 ms", [BATTERY, RELAY], "How fast must zone 1 trip?")
    assert english.text == "within 30 ms [1]" and english.cited == [1]


def test_markers_the_model_wrote_are_checked_and_renumbered():
    # [3] is the battery passage (kept, becomes [1]); [1] is the fire passage, which the answer does not use.
    checked = check_answer("温度保持在15至30摄氏度之间[3][1]。", [FIRE, RELAY, BATTERY], "蓄电池室温度？")
    assert checked.cited == [2] and checked.text == "温度保持在15至30摄氏度之间[1]。"
    # A marker past the passages is dropped too.
    assert check_answer("within 30 ms [7]", [RELAY], "zone 1?").text == "within 30 ms [1]"


def test_an_answer_drawing_on_two_passages_cites_both():
    answer = "切断电源后用干粉灭火器灭火[2]；蓄电池室温度保持在15至30摄氏度"
    checked = check_answer(answer, [BATTERY, FIRE, RELAY], "着火和温度？")
    # The model's own marker comes first (passage 2 becomes [1]); the battery passage gets [2] at the end.
    assert checked.cited == [1, 0]
    assert checked.text == "切断电源后用干粉灭火器灭火[1]；蓄电池室温度保持在15至30摄氏度[2]"


def test_a_passage_that_only_repeats_another_is_not_cited_beside_it():
    old = "消防规定（旧）\n电气设备着火时，应立即切断电源，再用干粉灭火器灭火。"
    checked = check_answer("应立即切断电源，再用干粉灭火器灭火", [FIRE, old], "着火怎么办？")
    assert checked.cited == [0] and checked.text.endswith("灭火[1]")


def test_an_unsupported_or_empty_answer_is_the_refusal_in_the_questions_language():
    for answer in ("红烧肉要用冰糖炒出糖色", "", "[1]"):
        checked = check_answer(answer, [BATTERY], "红烧肉怎么做？")
        assert (checked.text, checked.cited, checked.refused) == ("资料中没有找到相关内容。", [], True)
    assert check_answer("Paris is lovely", [RELAY], "Where to travel?").text == "The documents do not contain this."
    assert refusal("What is SOC?") == "The documents do not contain this." and refusal("SOC是什么") == "资料中没有找到相关内容。"


def test_an_answer_that_only_repeats_the_question_is_refused():
    question = "电容器组退出运行后，再次投入的间隔时间不得少于多少？"
    passage = "一、投切要求\n电容器组退出运行后，再次投入的间隔时间不得少于5分钟。"
    assert check_answer("电容器组退出运行后，再次投[1]", [passage], question).refused
    assert check_answer("不得少于5分钟", [passage], question).text == "不得少于5分钟[1]"


CAPACITOR = ("电容器组投切", "电容器组退出运行后，再次投入的间隔时间不得少于5分钟。母线电压超过额定电压1.1倍时，电容器组应退出运行。")


def test_a_supported_span_comes_back_as_its_clause():
    finished = finish_answer("5分钟", "电容器组再次投入要隔多久？", [CAPACITOR])
    assert finished.text == "电容器组退出运行后，再次投入的间隔时间不得少于5分钟。[1]" and finished.cited == [0]
    assert not finished.extractive and not finished.refused
    # Without expansion the checked span is what is sent.
    assert finish_answer("5分钟", "电容器组再次投入要隔多久？", [CAPACITOR], expand=False).text == "5分钟[1]"


def test_a_refused_answer_falls_back_to_the_sentence_that_matches_the_question():
    question = "母线电压超过额定电压多少倍时电容器组应退出运行？"
    finished = finish_answer("电容器电容器电容器", question, [CAPACITOR])  # debris: refused by the check
    assert finished.extractive and finished.cited == [0]
    assert finished.text.startswith("母线电压超过额定电压1.1倍时") and finished.text.endswith("[1]")
    assert finish_answer("电容器电容器电容器", question, [CAPACITOR], fallback=False).refused


def test_no_fallback_when_no_sentence_matches_the_question():
    finished = finish_answer("红烧肉要用冰糖", "红烧肉怎么做才好吃？", [CAPACITOR])
    assert finished.refused and finished.text == "资料中没有找到相关内容。" and finished.cited == []
    assert finish_answer("5分钟", "电容器？", [CAPACITOR], refuse_only=True).refused


def test_clause_of_cuts_a_long_sentence_to_the_comma_clause():
    body = ("巡视时应检查外壳有无鼓肚、渗漏油，套管有无裂纹和放电痕迹，熔断器是否完好，放电线圈指示是否正常，"
            "接头有无过热变色，并记录环境温度和电容器室的通风情况。")
    assert clause_of("放电痕迹", body) == "套管有无裂纹和放电痕迹，熔断器是否完好"
    assert clause_of("不在这里", body) is None and clause_of(body, body) is None


def test_a_span_of_the_wrong_sentence_moves_to_the_sentence_that_matches_the_question():
    question = "母线电压超过额定电压多少倍时电容器组应退出运行？"
    finished = finish_answer("5分钟", question, [CAPACITOR])  # in the passage, but it answers another question
    assert finished.extractive and finished.text.startswith("母线电压超过额定电压1.1倍时")
    kept = finish_answer("5分钟", question, [CAPACITOR], relocate=False)
    assert not kept.extractive and "5分钟" in kept.text
