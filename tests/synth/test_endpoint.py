"""A misbehaving teacher endpoint: every malformed reply is counted by reason and the run still finishes."""

from __future__ import annotations

import json

import pytest

from wattlm.data.stage import text_dataset
from wattlm.registry import Registry
from wattlm.synth.config import SynthConfig
from wattlm.synth.stage import synthesize
from wattlm.synth.teachers.openai_http import OpenAITeacher, api_base

from .scripted import BEHAVIOURS, ScriptedEndpoint, passage_doc, scripted_server


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for marker in BEHAVIOURS:
        (folder / f"{marker}.txt").write_text(passage_doc(marker), encoding="utf-8")
    registry = Registry(tmp_path / "ws")
    return registry, text_dataset(registry, folder, "docs")


CONFIG = SynthConfig(questions_per_chunk=1, concurrency=3, retries=2, heldout_fraction=0.0, style="chat")


def teacher_for(url: str, style: str = "chat") -> OpenAITeacher:
    return OpenAITeacher(url, "big-model", style=style, concurrency=3, retries=2, backoff=0.01, timeout=10)


def test_malformed_replies_are_counted_and_the_run_finishes(corpus):
    registry, docs = corpus
    endpoint = ScriptedEndpoint()
    with scripted_server(endpoint) as url:
        teacher = teacher_for(url)
        art, reused = synthesize(registry, docs, teacher, CONFIG, name="grid-qa", progress=False)
    assert not reused
    assert endpoint.hits["delta"] == 2  # the 500 was retried once and then answered
    assert endpoint.hits["india"] == 3  # 1 try + 2 retries, then given up
    assert dict(teacher.failures) == {"empty_content": 1, "unparseable_reply": 1, "missing_choices": 1,
                                      "http_500": 1}
    stats = json.loads((art.path / "stats.json").read_text())
    assert stats["dropped"] == {"teacher_failed": 4, "not_json": 1, "missing_answer": 1, "ungrounded_answer": 1}
    assert stats["teacher_failures"] == dict(teacher.failures)
    assert stats["requests"] == len(BEHAVIOURS) and stats["examples"] == {"train": 2, "heldout": 0}
    rows = [json.loads(line) for line in (art.path / "train" / "shard-00000.jsonl").read_text().splitlines()]
    assert sorted(r["messages"][1]["content"] for r in rows) == [
        "The alpha transformer is tested every six months.", "The delta transformer is tested every six months."]
    for row in rows:
        assert row["teacher"] == "big-model" and row["kind"] == "qa" and row["chunk_id"] == f"{row['doc_id']}#0"
        assert row["messages"][0]["role"] == "user" and "Question: How often" in row["messages"][0]["content"]
        assert "substation is inspected" in row["messages"][0]["content"]  # the passage travels with it
    assert art.kind == "dataset" and art.format == "jsonl"
    assert art.parents == [(docs.id, "source")]  # "big-model" is not in the registry: no teacher edge


def test_an_unchanged_run_is_reused_and_a_changed_one_is_not(corpus):
    registry, docs = corpus
    endpoint = ScriptedEndpoint()
    with scripted_server(endpoint) as url:
        first, _ = synthesize(registry, docs, teacher_for(url), CONFIG, progress=False)
        calls = sum(endpoint.hits.values())
        again, reused = synthesize(registry, docs, teacher_for(url), CONFIG, progress=False)
        assert reused and again.id == first.id and sum(endpoint.hits.values()) == calls
        changed, reused = synthesize(registry, docs, teacher_for(url), CONFIG.model_copy(update={"min_grounding": 0.9}),
                                     progress=False)
        assert not reused and changed.id != first.id
        faster, reused = synthesize(registry, docs, teacher_for(url), CONFIG.model_copy(update={"concurrency": 1}),
                                    progress=False)
        assert reused and faster.id == first.id  # concurrency changes speed, not the data


def test_auto_style_falls_back_to_few_shot_completions_for_a_base_model(corpus):
    registry, docs = corpus
    endpoint = ScriptedEndpoint(chat=False)
    with scripted_server(endpoint) as url:
        teacher = teacher_for(url, style="auto")
        art, _ = synthesize(registry, docs, teacher, CONFIG.model_copy(update={"style": "auto"}), progress=False)
    assert teacher.style == "completion"
    assert endpoint.paths["/v1/completions"] >= len(BEHAVIOURS)  # every passage went out as a few-shot prompt
    stats = json.loads((art.path / "stats.json").read_text())
    assert stats["style"] == "completion" and sum(stats["examples"].values()) >= 1


def test_judge_drops_what_the_teacher_does_not_confirm(corpus):
    registry, docs = corpus
    with scripted_server(ScriptedEndpoint()) as url:
        art, _ = synthesize(registry, docs, teacher_for(url), CONFIG.model_copy(update={"judge": True}), progress=False)
    stats = json.loads((art.path / "stats.json").read_text())
    assert stats["dropped"]["judge_rejected"] == 1 and stats["examples"]["train"] == 1  # delta said "No."
    row = json.loads((art.path / "train" / "shard-00000.jsonl").read_text())
    assert "alpha" in row["messages"][1]["content"]


def test_roundtrip_drops_a_pair_whose_question_the_teacher_answers_differently(corpus):
    registry, docs = corpus
    with scripted_server(ScriptedEndpoint()) as url:
        art, _ = synthesize(registry, docs, teacher_for(url), CONFIG.model_copy(update={"roundtrip": True}),
                            progress=False)
    stats = json.loads((art.path / "stats.json").read_text())
    # alpha's answer comes back as a part of the pair's answer (F1 0.67); delta's comes back as another fact
    assert stats["dropped"]["roundtrip_mismatch"] == 1 and stats["examples"]["train"] == 1
    row = json.loads((art.path / "train" / "shard-00000.jsonl").read_text())
    assert "alpha" in row["messages"][1]["content"]


def test_nothing_kept_is_a_clear_error_and_registers_nothing(corpus):
    registry, docs = corpus
    with scripted_server(ScriptedEndpoint()) as url:
        strict = CONFIG.model_copy(update={"min_grounding": 1.0, "answer_chars": (2, 10)})
        with pytest.raises(Exception, match="synthesis kept no examples"):
            synthesize(registry, docs, teacher_for(url), strict, progress=False)
    assert registry.list("dataset") == [docs]


def test_api_base():
    assert api_base("http://127.0.0.1:8000") == "http://127.0.0.1:8000/v1"
    assert api_base("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1"
    assert api_base("https://example.com/openai/v1") == "https://example.com/openai/v1"
