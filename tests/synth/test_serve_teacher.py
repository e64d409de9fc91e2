"""Our own `watt serve` as the teacher: SmolLM2 behind the batching engine on loopback, English passages."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import EXAMPLE

pytestmark = pytest.mark.integration
pytest.importorskip("llama_cpp")

ENGLISH = ["transformer_maintenance_checklist_en.txt", "vegetation_management_en.txt"]


def test_synthesis_with_watt_serve_as_teacher(tmp_path, smollm2_path):
    from wattlm.data.stage import text_dataset
    from wattlm.engines.batching.engine import LlamaCppBatchEngine
    from wattlm.models.store import add_model
    from wattlm.registry import Registry
    from wattlm.serve import create_app, running_server
    from wattlm.synth.config import SynthConfig
    from wattlm.synth.stage import synthesize
    from wattlm.synth.teachers.resolve import make_teacher

    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ENGLISH:
        shutil.copy(EXAMPLE / "raw" / name, docs / name)
    registry = Registry(tmp_path / "ws")
    corpus = text_dataset(registry, docs, "grid-en")
    served = add_model(registry, str(smollm2_path), name="smollm2")
    # SmolLM2-135M cannot keep to a JSON format in chat (measured: 0 of 3 replies parsed), but it follows
    # the few-shot prompt well, which `watt serve` offers through /v1/completions. Clause answers: with
    # 6 requests, SmolLM2's questions for short phrases fit them too rarely for a test that must not flake
    # (one fresh-clone run kept 0 of 5); this test is about the serving path, not the span choice.
    config = SynthConfig(max_chunks=3, questions_per_chunk=2, temperature=0.7, max_tokens=80, concurrency=3,
                         min_grounding=0.5, heldout_fraction=0.0, style="completion", answer_span="clause")
    engine = LlamaCppBatchEngine(smollm2_path, n_ctx=1024, n_threads=1, max_seqs=3)
    try:
        app = create_app({"smollm2": engine}, model_cards=[{"id": "smollm2", "tier": "foundation"}])
        with running_server(app, host="127.0.0.1", port=0) as base_url:
            teacher = make_teacher(registry, config, url=f"{base_url}/v1", model="smollm2")
            art, reused = synthesize(registry, corpus, teacher, config, name="grid-en-qa", progress=False)
    finally:
        engine.close()
    assert not reused and teacher.style == "completion"
    assert sorted(art.parents) == sorted([(corpus.id, "source"), (served.id, "teacher")])
    stats = json.loads((art.path / "stats.json").read_text())
    assert stats["chunks"] == 3 and 3 <= stats["requests"] <= 6  # one request per answer span (<= 2 a chunk)
    rows = [json.loads(line) for line in (art.path / "train" / "shard-00000.jsonl").read_text().splitlines()]
    assert rows and len(rows) == stats["examples"]["train"]
    for row in rows:
        user, assistant = row["messages"]
        assert user["content"].startswith("Read the passage and answer briefly.\nPassage: ") and assistant["content"]
        assert user["content"].endswith("\nAnswer:") and row["question_source"] == "teacher"
        assert row["teacher"] == "smollm2" and row["grounding"] >= 0.5
    # every request is accounted for: kept, or dropped/failed under a named reason
    assert stats["kept"]["qa"] + sum(stats["dropped"].values()) >= stats["requests"]


def test_local_gguf_teacher_in_process(tmp_path, smollm2_path):
    from wattlm.data.stage import text_dataset
    from wattlm.models.store import add_model
    from wattlm.registry import Registry
    from wattlm.synth.config import SynthConfig
    from wattlm.synth.stage import synthesize
    from wattlm.synth.teachers.resolve import make_teacher

    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(EXAMPLE / "raw" / ENGLISH[0], docs / ENGLISH[0])
    registry = Registry(tmp_path / "ws")
    corpus = text_dataset(registry, docs, "grid-en")
    model = add_model(registry, str(smollm2_path), name="smollm2")
    config = SynthConfig(max_chunks=2, questions_per_chunk=2, max_tokens=40, concurrency=2, heldout_fraction=0.0)
    teacher = make_teacher(registry, config, local="smollm2", n_threads=1)
    try:
        assert teacher.style == "chat"  # auto: SmolLM2's GGUF carries a chat template
        teacher.style = "completion"  # ...but it keeps to the few-shot format far better (see docs/synth.md)
        art, _ = synthesize(registry, corpus, teacher, config, progress=False)
    finally:
        teacher.close()
    assert (model.id, "teacher") in art.parents
    stats = json.loads((art.path / "stats.json").read_text())
    assert 2 <= stats["requests"] == teacher.requests <= 4  # up to two answer spans per chunk
    rows = [json.loads(line) for line in (art.path / "train" / "shard-00000.jsonl").read_text().splitlines()]
    for row in rows:  # answer-first: every answer is a clause of its passage
        passage = row["messages"][0]["content"].split("\n", 1)[1].rsplit("\n\nQuestion:", 1)[0]
        assert row["messages"][1]["content"] in passage and row["grounding"] == 1.0
