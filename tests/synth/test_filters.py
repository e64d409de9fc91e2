"""Filters: grounding by CJK bigrams / Latin words, copied questions, lengths, near-duplicate questions."""

from wattlm.synth.config import SynthConfig
from wattlm.synth.filters import (
    QuestionDedup,
    answer_context,
    check_item,
    copies_passage,
    grounding,
    is_question,
    question_fits,
    units,
)
from wattlm.synth.parsing import Item

ZH = "电缆沟内每隔50米设置一处防火墙，巡视人员每季度检查一次防火墙的完好情况。"
EN = "A fire barrier is installed every 50 metres along a cable trench. Patrol staff check the barriers once a quarter."


def test_units_are_cjk_bigrams_and_latin_content_words():
    assert units("防火墙") == {"防火", "火墙"}
    assert units("The barrier of 50 kV") == {"barrier", "50", "kv"}
    assert units("墙") == {"墙"}


def test_grounding_scores_supported_and_invented_answers():
    assert grounding("每季度检查一次", ZH) == 1.0
    assert grounding("由消防部门每年维修", ZH) < 0.2
    assert grounding("Once a quarter.", EN) == 1.0
    assert grounding("The fire brigade repairs them yearly.", EN) < 0.3
    assert grounding("。。。", ZH) == 0.0


def test_copied_question_is_caught_but_a_real_question_is_not():
    assert copies_passage("巡视人员每季度检查一次防火墙的完好情况？", ZH)
    assert not copies_passage("防火墙多久检查一次？", ZH)
    assert copies_passage("Patrol staff check the barriers once a quarter?", EN)
    assert not copies_passage("How often are the barriers checked?", EN)


def test_check_item_reasons():
    config = SynthConfig(question_chars=(4, 40), answer_chars=(2, 30), min_grounding=0.6)
    assert check_item(Item("防火墙多久检查一次？", "每季度检查一次。"), ZH, "qa", config) is None
    assert check_item(Item("防火墙多久检查一次？", "由消防部门每年维修。"), ZH, "qa", config) == "ungrounded_answer"
    assert check_item(Item("多久？", "每季度。"), ZH, "qa", config) == "question_too_short"
    assert check_item(Item("防火墙多久检查一次？", "季" * 31), ZH, "qa", config) == "answer_too_long"
    assert check_item(Item("防火墙多久检查一次？", "是"), ZH, "qa", config) == "answer_too_short"
    assert check_item(Item("巡视人员每季度检查一次防火墙的完好情况？", "每季度。"), ZH, "qa", config) == "question_copies_passage"
    assert check_item(Item("防火墙多久检查一次", "防火墙多久检查一次？"), ZH, "qa", config) == "answer_repeats_question"
    summary_config = SynthConfig(summary_chars=(5, 100))
    assert check_item(Item(None, "防火墙每隔50米设置，每季度检查。"), ZH, "summary", summary_config) is None


def test_dedup_drops_near_identical_questions_only():
    dedup = QuestionDedup(0.8)
    assert not dedup.seen("How often are the fire barriers checked?")
    assert dedup.seen("How often are the fire barriers checked")  # punctuation only
    assert dedup.seen("how often are the fire-barriers checked?")
    assert not dedup.seen("Where are the fire barriers installed?")
    assert not dedup.seen("防火墙多久检查一次？")
    assert dedup.seen("防火墙多久检查一次")


def test_statements_are_not_questions():
    assert is_question("防火墙多久检查一次") and is_question("谁负责巡视？") and is_question("防火墙完好吗")
    assert not is_question("巡视人员检查防火墙。") and not is_question("电源状态：冷备用→热备用")
    assert is_question("How often are barriers checked") and is_question("The barriers are checked when?")
    assert not is_question("Patrol staff check the barriers.")
    assert check_item(Item("巡视人员检查防火墙。", "每季度"), ZH, "qa", SynthConfig()) == "not_a_question"


def test_answer_first_questions_must_ask_about_their_answer_and_not_copy_the_prompt():
    passage = "观冰人员每两小时报告一次覆冰厚度。融冰前由继电保护专业核算定值。"
    assert answer_context(passage, "每两小时") == "观冰人员每两小时报告一次覆冰厚度"
    assert answer_context(passage, "not there") == passage
    assert question_fits("观冰人员多久报告一次覆冰厚度？", "每两小时", passage) > 0.5
    assert question_fits("融冰前由谁核算定值？", "每两小时", passage) < 0.2
    config = SynthConfig()
    off = Item("融冰前由谁核算定值？", "每两小时")
    assert check_item(off, passage, "qa", config, answer_first=True) == "question_off_answer"
    assert check_item(off, passage, "qa", config) is None  # a teacher-written answer is judged by grounding
    examples = "资料：电缆沟内每隔50米设置一处防火墙。\n答案：每隔50米\n问题：电缆沟内的防火墙多远设置一处？"
    copied = Item("电缆沟内的防火墙多远设置一处？", "每两小时")
    assert check_item(copied, passage, "qa", config, examples=examples) == "question_copies_prompt"


def test_a_quantity_question_needs_a_number_in_its_answer():
    passage = "备用容量不少于最大负荷的百分之十。明日有寒潮降温预报。"
    assert check_item(Item("备用容量多少？", "明日有寒潮降温预报"), passage, "qa", SynthConfig()) == "answer_type_mismatch"
    assert check_item(Item("备用容量至少是多少？", "不少于最大负荷的百分之十"), passage, "qa", SynthConfig()) is None
    assert check_item(Item("How often are the barriers checked?", "once a quarter"), EN, "qa", SynthConfig()) is None
    assert check_item(Item("How often are the barriers checked?", "Patrol staff check the barriers"), EN, "qa",
                      SynthConfig()) == "answer_type_mismatch"
    assert check_item(Item("How many metres apart are the barriers?", "every 50 metres"), EN, "qa", SynthConfig()) is None
