"""Decontamination: documents sharing a 13-word or 25-hanzi n-gram with an eval item are dropped."""

import json

import pytest

from wattlm.data import DataConfig, build_corpus
from wattlm.data.card import render_card
from wattlm.data.document import Document
from wattlm.data.filters.decontaminate import Decontaminator, read_eval_items
from wattlm.errors import NotFound

from ..helpers import sentence, write

QUESTION = ("Which device interrupts the fault current when a short circuit occurs on a feeder "
            "supplied by the substation transformer")
ZH_QUESTION = "在变电站倒闸操作过程中，监护人发现操作人走错间隔时应当立即采取下列哪一项措施以防止发生误操作事故"


@pytest.fixture
def eval_file(tmp_path):
    records = [{"question": QUESTION, "choices": ["fuse", "circuit breaker", "relay", "meter"], "answer": 1},
               {"question": ZH_QUESTION, "choices": {"text": ["停止操作", "继续"], "label": ["A", "B"]},
                "answerKey": "A"}]
    return write(tmp_path / "eval" / "grid_qa.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in records))


def doc(text: str) -> Document:
    return Document("id", text, "x.txt", {"lang": "zh"})


def test_word_13_grams(eval_file):
    step = Decontaminator(eval_sets=[eval_file])
    words = QUESTION.split()
    assert not step.keep(doc("Exam notes. " + " ".join(words[2:15]).upper() + " and more."))  # 13 words, any case
    assert step.keep(doc("Exam notes. " + " ".join(words[2:14]) + " and more."))  # 12 words
    assert step.examples[0]["eval_set"] == "grid_qa.jsonl"


def test_hanzi_25_grams_ignore_punctuation_and_script(eval_file):
    step = Decontaminator(eval_sets=[eval_file])
    hanzi = "".join(ch for ch in ZH_QUESTION if ch != "，")
    assert not step.keep(doc("培训材料：" + hanzi[3:28] + "。"))  # 25 hanzi
    assert step.keep(doc("培训材料：" + hanzi[3:27] + "。"))  # 24 hanzi
    # The comma and spacing differ from the item: layout does not hide a copy.
    assert not step.keep(doc("题目：" + ZH_QUESTION.replace("，", " , ")))


def test_traditional_copy_matches_after_normalization(eval_file, tmp_path):
    raw = tmp_path / "raw"
    write(raw / "trad.txt", "題目：在變電站倒閘操作過程中，監護人發現操作人走錯間隔時應當立即採取下列哪一項措施以防止發生誤操作事故。")
    write(raw / "clean.txt", "\n".join(sentence(i) for i in range(4)))
    config = DataConfig(min_chars=20, quality_filters=False, heldout_fraction=0.2, eval_sets=[eval_file])
    report = build_corpus([raw], tmp_path / "out", config, progress=False)
    assert report.dropped == {"eval_contamination": 1}
    assert report.contamination["eval_sets"] == {"grid_qa.jsonl": {"items": 2, "docs_dropped": 1}}
    assert report.contamination["examples"][0]["source"] == "trad.txt"
    assert report.contamination["ngram"] == {"words": 13, "hanzi": 25}
    assert "Eval contamination" in render_card(report)


def test_eval_items_from_jsonl_and_text(eval_file, tmp_path):
    items = read_eval_items(eval_file)
    assert len(items) == 2 and QUESTION in items[0] and "circuit breaker" in items[0]
    assert items[0][-1].startswith(QUESTION)  # the concatenation of all fields is a segment too
    text = write(tmp_path / "plain.txt", "第一段。\n\n第二段。\n")
    assert read_eval_items(text) == [["第一段。"], ["第二段。\n"]]
    with pytest.raises(NotFound, match="eval_sets"):
        Decontaminator(eval_sets=[tmp_path / "nope.jsonl"])


def test_edited_eval_set_changes_the_cache_key(eval_file):
    config = DataConfig(eval_sets=[eval_file])
    before = config.cache_settings()
    eval_file.write_text(eval_file.read_text("utf-8") + "\n", "utf-8")
    assert config.cache_settings() != before
