"""The third tier on a tiny model: teacher QA from the corpus -> sft -> task model judged against its parent.

The teacher is a scripted OpenAI-compatible endpoint on loopback (the real-teacher paths are tested in
tests/synth); what is tested here is the orchestration: lineage, scores beside the parent, gates, export.
"""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from wattlm.eval.gates import GateFailed
from wattlm.lineage import lineage_chain
from wattlm.models.store import add_model
from wattlm.recipe import load_recipe
from wattlm.registry import Registry
from wattlm.run.pipeline import run_recipe

TOPICS = ["breaker", "transformer", "relay", "cable", "capacitor", "busbar", "insulator", "arrester"]


def _doc(topic: str) -> str:
    return (f"The {topic} crew starts the patrol at seven. The {topic} readings go into the shift log before noon. "
            f"A {topic} defect that looks serious is reported to the dispatcher at once, and the {topic} "
            f"foreman signs the repair ticket the same day.")


class _Teacher(BaseHTTPRequestHandler):
    """Answers every QA request with the passage's first sentence: grounded by construction."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        passage = prompt.split("Passage:", 1)[-1].strip()
        first = re.split(r"(?<=\.)\s", passage, maxsplit=1)[0]
        topic = first.split()[1]
        pairs = {"pairs": [{"question": f"When does the {topic} crew begin its round?", "answer": first}]}
        reply = json.dumps({"id": "x", "object": "chat.completion", "model": "big",
                            "choices": [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": json.dumps(pairs)}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


@pytest.fixture
def teacher_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Teacher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def _recipe(tmp_path, teacher_url, gates: str, export: str) -> object:
    raw = tmp_path / "raw"
    raw.mkdir(exist_ok=True)
    for topic in TOPICS:
        (raw / f"{topic}.txt").write_text(_doc(topic))
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps({"question": f"When does the {t} crew start?", "context": _doc(t),
                                      "answer": "at seven"}) + "\n" for t in TOPICS[:3]))
    mc = tmp_path / "mc.jsonl"
    mc.write_text(json.dumps({"question": "Who signs the repair ticket?", "choices": ["the foreman", "the cat"],
                              "answer": 0}) + "\n")
    path = tmp_path / "recipe.yaml"
    path.write_text(
        "name: tiny\nfoundation: tiny-base\n"
        "data: {inputs: [raw], heldout_fraction: 0.25, min_chars: 20, quality_filters: false, near_dedup: false}\n"
        "train: {steps: 2, seq_len: 32, batch_size: 2, lr: 0.005, warmup_steps: 1, bf16: false}\n"
        "eval: {seq_len: 64, max_tokens: 200, tasks: [mc.jsonl], max_new_tokens: 8}\n"
        f"export: {export}\n"
        "task:\n"
        f"  teacher_url: {teacher_url}\n"
        "  teacher_model: big\n"
        "  synth: {questions_per_chunk: 1, min_chunk_chars_latin: 100, concurrency: 2}\n"
        "  train: {method: sft, steps: 2, seq_len: 64, batch_size: 2, lr: 0.005, warmup_steps: 1, bf16: false}\n"
        "  eval: [qa.jsonl]\n"
        f"  gates: {gates}\n"
    )
    return load_recipe(path)


def test_task_tier_synthesizes_trains_judges_and_exports(tmp_path, tiny_model_dir, teacher_url):
    registry = Registry(tmp_path / "ws")
    add_model(registry, str(tiny_model_dir), name="tiny-base")
    recipe = _recipe(tmp_path, teacher_url, "[{metric: qa_char_f1, min_value: 0}]",
                     "{quants: [q8_0], check_prompt: 'The crew', check_tokens: 4, serve_check: null}")

    first = run_recipe(recipe, registry, progress=False)
    synth = registry.get(first.artifacts["synth"])
    assert synth.metrics["examples"]["train"] >= 1
    rows = [json.loads(line) for line in (synth.path / "train" / "shard-00000.jsonl").read_text().splitlines()]
    assert all(r["messages"][-1]["role"] == "assistant" and r["teacher"] for r in rows)
    task = registry.get(first.artifacts["task"])
    assert task.tier == "task"
    # Scores of the task model and of its parent on the same QA set, stored on both artifacts.
    assert any(k.startswith("qa:qa:") for k in first.scores["task"])
    assert any(k.startswith("qa:qa:") for k in first.scores["industry"])
    assert any(k.startswith("mc:mc:") for k in first.scores["foundation"])
    # The gate reads the task model's and its parent's stored scores (a plumbing check: a tiny random
    # model cannot be relied on to improve; the failing path is the next test).
    gate = first.gates[0]
    assert gate["tier"] == "task" and gate["passed"]
    assert gate["child"] == first.scores["task"]["qa:qa:char_f1"] == task.metrics["qa:qa:char_f1"]
    assert gate["parent"] == first.scores["industry"]["qa:qa:char_f1"]
    assert [e["quant"] for e in first.task_exports] == ["f16", "q8_0"]
    assert first.serving == first.task_serving == {}  # export.serve_check: null times nothing
    assert "serve check" not in {s["name"] for s in first.timeline}
    # One load per model in the whole run: the industry model is scored on the task tier's set while it
    # is loaded for its own tier, so the task tier finds its parent's scores stored.
    loads = [s["name"] for s in first.timeline if s["name"].startswith("load ")]
    assert sorted(loads) == sorted(set(loads)) and len(loads) == 3, loads
    assert [s["name"] for s in first.timeline if s["depth"] == 0][-3:] == ["task train", "task eval", "task export"]
    assert first.model_path == str(task.path)
    html = open(first.report_html).read()
    assert "task: loss per step" in html and "Synthesized task data" in html

    chain = lineage_chain(registry, task.id)
    assert [a["tier"] for a in chain["chain"] if a["kind"] == "model"] == ["foundation", "industry", "task"]
    synth_parents = {role for _, role in synth.parents}
    assert synth_parents == {"source"}  # the scripted teacher is not a registered model

    second = run_recipe(recipe, registry, progress=False)
    assert all(second.reused.values()), second.reused
    assert second.artifacts == first.artifacts


def test_task_gate_failure_stops_before_task_export(tmp_path, tiny_model_dir, teacher_url):
    registry = Registry(tmp_path / "ws")
    add_model(registry, str(tiny_model_dir), name="tiny-base")
    recipe = _recipe(tmp_path, teacher_url, "[{metric: qa_char_f1, min_delta: 200}]", "null")
    with pytest.raises(GateFailed, match=r"task qa_char_f1 .* < industry"):
        run_recipe(recipe, registry, progress=False)
    assert registry.list("export") == []
    report = json.loads((registry.list("report")[-1].path / "report.json").read_text())
    assert report["gates"][0]["tier"] == "task" and report["gates"][0]["passed"] is False


def test_recipe_errors_caught_at_load(tmp_path, teacher_url):
    from wattlm.errors import WattError

    recipe = _recipe(tmp_path, teacher_url, "[]", "null")
    source = (tmp_path / "recipe.yaml").read_text()
    assert recipe.task.train.method == "sft"  # a partial task.train block keeps the task defaults
    cases = {
        source.replace(f"  teacher_url: {teacher_url}\n  teacher_model: big\n", ""): "task.teacher 'industry' runs",
        source.replace("  teacher_model: big\n", "  teacher_model: big\n  teacher: other\n"): "not both",
        source.replace("  gates: []", "  gates: [{metric: domain_ppl, max_ratio: 1}]"): "not measured on the task model",
        source.replace("  eval: [qa.jsonl]\n", "").replace("  gates: []", "  gates: [{metric: qa_char_f1, min_delta: 1}]"):
            "need task.eval",
    }
    for text, message in cases.items():
        (tmp_path / "bad.yaml").write_text(text)
        with pytest.raises(WattError, match=message):
            load_recipe(tmp_path / "bad.yaml")


def test_foundation_and_industry_teachers_are_this_runs_models(tmp_path, tiny_model_dir, teacher_url, monkeypatch):
    """`teacher: foundation` / `industry` name this run's own models; anything else is a registry name."""
    import wattlm.synth.teachers.resolve as resolve

    registry = Registry(tmp_path / "ws")
    add_model(registry, str(tiny_model_dir), name="tiny-base")
    recipe = _recipe(tmp_path, teacher_url, "[]", "null")
    asked = []

    class Stop(Exception):
        pass

    def fake_make_teacher(registry, config, url=None, model=None, local=None, **kw):
        asked.append(local)
        raise Stop

    monkeypatch.setattr(resolve, "make_teacher", fake_make_teacher)
    for teacher in ("foundation", "industry", "some-registered-gguf"):
        recipe = recipe.model_copy(update={"task": recipe.task.model_copy(
            update={"teacher": teacher, "teacher_url": None, "teacher_model": None})})
        with pytest.raises(Stop):
            run_recipe(recipe, registry, progress=False)
    foundation, industry = registry.get("tiny-base"), registry.get("tiny-industry", kind="model")
    assert asked == [foundation.id, industry.id, "some-registered-gguf"]
