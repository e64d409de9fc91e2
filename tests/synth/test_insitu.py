"""In-situ questions: the answer's clause with the answer replaced by the right question word."""

import json

import pytest

from wattlm.errors import WattError
from wattlm.synth.chunking import Chunk
from wattlm.synth.config import SynthConfig
from wattlm.synth.filters import QuestionDedup, eval_question_index
from wattlm.synth.insitu import insitu_question, question_word
from wattlm.synth.stage import Job, Tally, screen

P = ("我国电网的额定频率为50Hz，偏差通常控制在±0.2Hz以内。二次调频由AGC系统实现。观冰人员在重点区段驻守，"
     "每两小时报告一次。三次调整的响应时间在十五分钟以上。运行中油的击穿电压不小于35kV。雷雨季节前（一般3月至4月）"
     "要全面检查防雷设施。配电终端包括站所终端（DTU）和馈线终端。")


def test_question_words_follow_the_kind_of_answer():
    assert question_word("50Hz") == ("多少", "50Hz")
    assert question_word("不小于35kV") == ("多少", "35kV")  # the bound stays in the question
    assert question_word("每两小时") == ("多久", "每两小时")
    assert question_word("十五分钟以上") == ("多长时间", "十五分钟以上")
    assert question_word("3月") == ("几月", "3月")
    assert question_word("AGC") == ("什么", "AGC")
    assert question_word("三制") is None  # a name that starts with a numeral, not an amount


def test_questions_are_made_in_place():
    assert insitu_question(P, "50Hz") == "我国电网的额定频率为多少？"
    assert insitu_question(P, "AGC") == "二次调频由什么系统实现？"
    assert insitu_question(P, "每两小时") == "观冰人员在重点区段驻守，多久报告一次？"  # short clause: context added
    assert insitu_question(P, "十五分钟以上") == "三次调整的响应时间在多长时间？"
    assert insitu_question(P, "不小于35kV") == "运行中油的击穿电压不小于多少？"
    assert insitu_question(P, "3月") == "雷雨季节前（一般几月至4月）要全面检查防雷设施？"
    assert insitu_question(P, "DTU") is None  # a gloss in brackets
    assert insitu_question(P, "不在资料里") is None
    assert insitu_question("本规定自2024年起在全省各供电公司执行。", "2024年") == "本规定自哪一年起在全省各供电公司执行？"
    assert insitu_question("10千伏配网带电作业安全要点。", "10千伏") is None  # a heading, not a fact
    assert insitu_question("缺陷记录：| 5月18日 | 220千伏澄东站 | 风扇电机烧毁 |", "5月") is None  # a table row


def _job(answer, reply):
    return Job(Chunk("doc#0", "doc", 0, P, "zh", "train"), "qa", 0, answer=answer, reply=reply)


def test_screen_falls_back_to_insitu_and_keeps_eval_questions_out():
    config = SynthConfig(insitu_fallback=True)
    jobs = [_job("50Hz", "电网频率很重要。"),  # a statement: replaced by the in-situ question
            _job("AGC", "二次调频靠哪个系统？"),  # the teacher's own question is kept
            _job("每两小时", "观冰人员多久报告一次覆冰情况？")]
    evals = QuestionDedup(0.5)
    evals.add("观冰人员多久报告一次覆冰？")
    tally = Tally()
    kept = screen(jobs, config, "completion", tally, evals)
    # the teacher's question on 每两小时 is too near the eval's; the in-situ one is not
    assert [(c.item.question, c.source) for c in kept] == [("我国电网的额定频率为多少？", "insitu"),
                                                          ("二次调频靠哪个系统？", "teacher"),
                                                          ("观冰人员在重点区段驻守，多久报告一次？", "insitu")]
    assert tally.dropped == {"not_a_question": 1, "eval_overlap": 1}
    evals.add("观冰人员在重点区段驻守，多长时间报告一次？")
    tally = Tally()
    assert len(screen(jobs, config, "completion", tally, evals)) == 2
    assert tally.dropped == {"not_a_question": 1, "eval_overlap": 1, "insitu_eval_overlap": 1}
    without = screen(jobs, SynthConfig(), "completion", Tally())
    assert [c.source for c in without] == ["teacher", "teacher"]


def test_eval_question_index_reads_question_fields(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps({"question": "我国电网的额定频率是多少？", "answer": "50Hz"}, ensure_ascii=False) + "\n")
    index = eval_question_index([path], 0.5)
    assert index.matches("我国电网额定频率是多少？") and not index.matches("二次调频由什么系统实现？")
    assert eval_question_index([], 0.5) is None
    bad = tmp_path / "text.jsonl"
    bad.write_text('{"text": "x"}\n')
    with pytest.raises(WattError, match="text.jsonl: eval_sets need JSONL records with a 'question' field"):
        eval_question_index([bad], 0.5)
