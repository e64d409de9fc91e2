"""Refusal pairs in the task SFT data (issue 11, item 6): the configured share, in the served wording."""

from __future__ import annotations

import json

import pytest

from wattlm.data.stage import text_dataset
from wattlm.registry import Registry
from wattlm.shared.qa_format import qa_prompt
from wattlm.shared.refusal import REFUSALS, is_refusal, refusal
from wattlm.synth.chunking import Chunk
from wattlm.synth.config import SynthConfig
from wattlm.synth.refusals import OFF_TOPIC_EN, OFF_TOPIC_ZH, Answerable, refusal_count, refusal_records
from wattlm.synth.remix import add_refusals
from wattlm.synth.stage import synthesize

from .fake_teacher import MARKERS, CountingTeacher
from .scripted import passage_doc


def _train_rows(art) -> list[dict]:
    return [json.loads(line) for line in (art.path / "train" / "shard-00000.jsonl").read_text().splitlines()]


def _synth(tmp_path, ratio: float, **settings):
    registry = Registry(tmp_path / "home")
    folder = tmp_path / "docs"
    folder.mkdir(exist_ok=True)
    for marker in MARKERS:
        (folder / f"{marker}.txt").write_text(passage_doc(marker), encoding="utf-8")
    config = SynthConfig(questions_per_chunk=1, concurrency=1, heldout_fraction=0.0, style="chat",
                         refusal_ratio=ratio, **settings)
    return synthesize(registry, text_dataset(registry, folder, "docs"), CountingTeacher(), config, progress=False)[0]


def test_the_train_split_holds_refusals_at_the_configured_ratio(tmp_path):
    art = _synth(tmp_path, 0.25)
    rows = _train_rows(art)
    refusals = [r for r in rows if r["kind"] == "refusal"]
    answerable = [r for r in rows if r["kind"] == "qa"]
    assert len(answerable) >= len(MARKERS) - 1  # the corpus holds one document out
    assert len(refusals) == refusal_count(len(answerable), 0.25) == 2
    assert len(refusals) / len(rows) == pytest.approx(0.25, abs=0.05)
    stats = json.loads((art.path / "stats.json").read_text())
    assert sum(stats["refusals"].values()) == len(refusals)
    answerable_questions = {r["messages"][0]["content"] for r in answerable}
    for row in refusals:
        user, assistant = row["messages"]
        assert user["content"] not in answerable_questions
        if row["question_source"] == "closed_book":  # the QA wording, no passage, in either language
            question = user["content"].removeprefix("Question: ").removesuffix("\nAnswer:")
            question = question.removeprefix("问题：").removesuffix("\n答案：")
            assert question in OFF_TOPIC_EN + OFF_TOPIC_ZH and user["content"] == qa_prompt(question)[0]
            assert assistant == {"role": "assistant", "content": refusal(question)} and is_refusal(assistant["content"])
        else:
            assert "Passage: " in user["content"] and row["chunk_id"]
            assert assistant == {"role": "assistant", "content": REFUSALS["en"]}


def test_no_ratio_no_refusals_and_the_old_cache_key(tmp_path):
    rows = _train_rows(_synth(tmp_path, 0.0))
    assert all(r["kind"] == "qa" for r in rows)
    # datasets made before the settings keep their key
    assert "refusal_ratio" not in SynthConfig().cache_fields() and "refusal_shapes" not in SynthConfig().cache_fields()
    assert SynthConfig(refusal_ratio=0.2).cache_fields()["refusal_ratio"] == 0.2


def _chunk(doc: str, text: str, lang: str = "zh") -> Chunk:
    return Chunk(id=f"{doc}#0", doc_id=doc, index=0, text=text, lang=lang, split="train")


def test_other_passage_refusals_never_hold_the_answer():
    chunks = [_chunk("a", "主变压器油温不得超过85℃。"), _chunk("b", "电容器组退出后再投入应间隔5分钟。"),
              _chunk("c", "85℃是顶层油温的上限。")]
    pairs = [Answerable("主变压器顶层油温上限是多少？", "85℃", chunks[0], "zh")] * 9
    records = refusal_records(pairs, chunks, ratio=0.5, seed=3)
    assert len(records) == refusal_count(9, 0.5) == 9
    closed_book = [row for row in records if row["question_source"] == "closed_book"]
    assert len(closed_book) == 6  # three in five: closed_book x3, off_topic_passage, other_passage, in turn
    assert [row["messages"][1]["content"] for row in closed_book] == [REFUSALS[lang] for lang in ("zh", "en") * 3]
    for row in records:
        user, assistant = row["messages"]
        if row["question_source"] != "closed_book":  # over a passage: the corpus's language
            assert assistant["content"] == REFUSALS["zh"]
        if row["question_source"] == "other_passage":
            assert row["doc_id"] == "b" and "85℃" not in user["content"].split("问题：")[0]
    assert {r["question_source"] for r in records} == {"closed_book", "off_topic_passage", "other_passage"}
    assert refusal_records(pairs, chunks, ratio=0.5, seed=3) == records  # seeded


def test_refusals_added_to_a_synthesized_dataset_match_synthesis_with_that_ratio(tmp_path):
    plain, mixed = _synth(tmp_path, 0.0), _synth(tmp_path, 0.25)
    registry = Registry(tmp_path / "home")
    remixed, reused = add_refusals(registry, plain, 0.25)
    assert not reused and _train_rows(remixed) == _train_rows(mixed)  # no teacher asked, the same rows
    assert remixed.parents == [(plain.id, "source")] and remixed.recipe["synth"]["refusal_ratio"] == 0.25
    assert json.loads((remixed.path / "stats.json").read_text())["refusals"] == mixed.metrics["refusals"]
    again, hit = add_refusals(registry, plain, 0.25)
    assert hit and again.id == remixed.id
    # A dataset with refusals already: remixed from its answerable rows in synthesis order.
    unmixed, _ = add_refusals(registry, mixed, 0.0)
    assert _train_rows(unmixed) == _train_rows(plain) and unmixed.metrics["refusals"] == {}
    assert _train_rows(add_refusals(registry, mixed, 0.25)[0]) == _train_rows(mixed)


def test_refusals_of_chosen_shapes_only():
    chunks = [_chunk("a", "主变压器油温不得超过85℃。"), _chunk("b", "电容器组退出后再投入应间隔5分钟。")]
    pairs = [Answerable("主变压器顶层油温上限是多少？", "85℃", chunks[0], "zh")] * 8
    records = refusal_records(pairs, chunks, ratio=0.5, seed=3, shapes=["closed_book"])
    assert len(records) == 8 and {r["question_source"] for r in records} == {"closed_book"}
    assert [r["messages"][1]["content"] for r in records] == [REFUSALS["zh"], REFUSALS["en"]] * 4
    assert all(r["chunk_id"] is None for r in records)


def test_synthesis_with_closed_book_refusals_only_and_their_remix(tmp_path):
    art = _synth(tmp_path, 0.25, refusal_shapes=["closed_book"])
    refusals = [r for r in _train_rows(art) if r["kind"] == "refusal"]
    assert refusals and {r["question_source"] for r in refusals} == {"closed_book"}
    plain = _synth(tmp_path, 0.0)
    remixed, _ = add_refusals(Registry(tmp_path / "home"), plain, 0.25, shapes=["closed_book"])
    assert _train_rows(remixed) == _train_rows(art) and remixed.name.endswith("-closed_book")
