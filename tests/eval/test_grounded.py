"""Grounded evaluation (rag / ragmc): a tiny random model, a tiny KB from three documents, and the
retrieve callable the caller passes in (the eval stage never imports the KB stage)."""

import json

import pytest

from wattlm.errors import WattError
from wattlm.eval.compare import comparison
from wattlm.eval.gates import Gate, check_gates
from wattlm.eval.grounded_mc import GroundedMCTask
from wattlm.eval.grounded_qa import REFUSAL, GroundedQATask, key_recall
from wattlm.eval.loaders import grounded_task
from wattlm.eval.runner import evaluate_model
from wattlm.eval.task import TaskSettings
from wattlm.models.store import add_model
from wattlm.registry import Registry

DOCS = {
    "capacitor.md": "# 电容器组维护细则\n\n## 投切要求\n\n电容器组退出运行后，再次投入的间隔时间不得少于5分钟。"
    "母线电压超过额定电压的1.1倍时，应将电容器组退出运行。\n",
    "fire_rules.txt": "变电站消防安全管理规定\n\n第一条 蓄电池室内严禁烟火，照明和通风设备应采用防爆型。\n"
    "第二条 电气设备着火时，应立即切断电源，再用干粉或二氧化碳灭火器灭火，严禁用水扑救带电设备。\n",
    "relay_en.txt": "Testing Distance Protection Relays\n\nZone 1 must trip within 30 ms during the routine test. "
    "Never open a live current transformer secondary circuit.\n",
}
RAG = [
    {"question": "电容器组退出运行后，再次投入的间隔时间不得少于多少？", "answer": "5分钟", "source": "capacitor.md"},
    {"question": "电气设备着火时，应该先做什么？", "answer": "切断电源", "source": "fire_rules.txt"},
    {"question": "How fast must zone 1 of a distance relay trip?", "answer": "within 30 ms", "source": "relay_en.txt"},
    {"question": "红烧肉怎么做才好吃？", "answer": "", "source": None},
]
MC = [{"question": "电容器组再次投入的间隔时间不得少于多少？", "choices": ["1分钟", "5分钟", "10分钟", "30秒"],
       "answer": 1, "source": "capacitor.md"}]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_kb(tmp_path_factory):
    from wattlm.kb.stage import build_kb
    from wattlm.run.knowledge import documents_dataset, kb_origins

    root = tmp_path_factory.mktemp("grounded")
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    registry = Registry(root / "home")
    dataset = documents_dataset(registry, [docs], "tiny-documents", progress=False)
    kb, _ = build_kb(registry, dataset, "tiny", origins=kb_origins([docs]))
    return registry, kb


@pytest.fixture(scope="module")
def recording_retrieve(tiny_kb):
    """The KB's retriever, wrapped to record every question it is asked."""
    from wattlm.run.knowledge import kb_retrieve

    retrieve, asked = kb_retrieve(tiny_kb[1]), []

    def recorded(question, k):
        asked.append((question, k))
        return retrieve(question, k)
    return recorded, asked


def test_grounded_qa_scores_a_model_and_stores_declared_metrics(tiny_kb, recording_retrieve, tiny_model_dir, tmp_path):
    registry, _ = tiny_kb
    retrieve, asked = recording_retrieve
    asked.clear()
    task = grounded_task(write_jsonl(tmp_path / "grid-rag.jsonl", RAG), TaskSettings(max_new_tokens=6), retrieve, k=2)
    assert isinstance(task, GroundedQATask) and task.kind == "rag"
    assert [q for q, _ in asked] == [r["question"] for r in RAG]  # retrieval came from the callable
    first = task.items[0]
    assert "阅读材料，用简短的词语回答问题。" in first.prompt and "5分钟" in first.prompt  # qa_format wording + passage
    assert first.closed_prompt == "问题：电容器组退出运行后，再次投入的间隔时间不得少于多少？\n答案："
    assert all(item.rank == 1 for item in task.items[:3])  # each source is the best hit in this tiny KB
    assert task.items[3].unsupported  # nothing in the KB supports the cooking question: refused, not asked

    model = add_model(registry, str(tiny_model_dir), name="tiny-grounded")
    [result] = evaluate_model(registry, model, [task])
    scores = {name.rsplit(":", 1)[1]: value for name, value in result.scores.items()}
    assert set(scores) <= set(GroundedQATask.metrics)
    assert {"char_f1", "closed_char_f1", "key_recall", "exact_match", "recall_at_1", "recall_at_3", "recall_at_5",
            "mrr", "refusal_rate", "false_refusals"} <= set(scores)
    assert scores["recall_at_3"] == 100.0 and scores["mrr"] == 100.0 and scores["refusal_rate"] == 100.0
    assert not GroundedQATask.metrics["false_refusals"].higher_is_better
    assert GroundedQATask.metrics["char_f1"].higher_is_better
    payload = comparison(registry, [registry.get(model.id)])
    assert payload["better"]["rag:grid-rag:char_f1"] == "higher"
    assert payload["better"]["rag:grid-rag:false_refusals"] == "lower"
    assert "rag:grid-rag:closed_char_f1" in payload["metrics"]


def test_answer_scores_key_recall_and_citation_precision(tiny_kb, recording_retrieve, tmp_path):
    task = grounded_task(write_jsonl(tmp_path / "rag.jsonl", RAG), TaskSettings(), recording_retrieve[0], k=2)
    grounded = ["5分钟", "切断电源", "within 30 ms", REFUSAL["zh"]]
    closed = {0: "10分钟", 1: "报警", 2: "fast"}
    scores = task.score(grounded, closed)
    assert scores["char_f1"] == 100.0 and scores["key_recall"] == 100.0 and scores["exact_match"] == 100.0
    assert scores["closed_char_f1"] < 50 and scores["false_refusals"] == 0.0
    assert scores["citation_precision"] == 100.0  # every passage holding the answer comes from its source
    assert key_recall("额定电压", "额定电压的1.1倍") == 50.0  # 4 of 8 units: 额定电压的, 1, 1, 倍
    refused = task.score([REFUSAL["zh"]] * 4, closed)
    assert refused["false_refusals"] == 100.0 and refused["char_f1"] == 0.0


def test_grounded_multiple_choice_puts_passages_in_the_prompt(tiny_kb, recording_retrieve, tiny_model_dir, tmp_path):
    registry, _ = tiny_kb
    task = grounded_task(write_jsonl(tmp_path / "grid-mc.jsonl", MC), TaskSettings(), recording_retrieve[0], k=1)
    assert isinstance(task, GroundedMCTask) and task.kind == "ragmc"
    assert task.items[0].prompt.startswith("阅读材料：") and "间隔时间不得少于5分钟" in task.items[0].prompt
    model = add_model(registry, str(tiny_model_dir), name="tiny-grounded-mc")
    [result] = evaluate_model(registry, model, [task])
    assert {"ragmc:grid-mc:acc", "ragmc:grid-mc:acc_norm", "ragmc:grid-mc:recall_at_3"} <= set(result.scores)


def test_gate_against_the_models_own_closed_book_score():
    gate = Gate(metric="rag_char_f1", baseline="rag_closed_char_f1", min_delta=20)
    scores = {"task": {"rag:grid:char_f1": 62.0, "rag:grid:closed_char_f1": 30.0},
              "industry": {"rag:grid:char_f1": 10.0}}
    [result] = check_gates([gate], scores, child="task", parent="industry")
    assert result["passed"] and result["parent"] == 30.0 and "task rag_closed_char_f1 30.00 + 20" in result["message"]
    scores["task"]["rag:grid:closed_char_f1"] = 50.0
    assert not check_gates([gate], scores, child="task", parent="industry")[0]["passed"]
    recall = Gate(metric="rag_recall_at_3", min_value=90)
    assert check_gates([recall], scores | {"task": {"rag:grid:recall_at_3": 93.3}}, child="task")[0]["passed"]
    with pytest.raises(ValueError, match="disagree"):
        Gate(metric="rag_char_f1", baseline="rag_false_refusals", min_delta=1)


def test_malformed_rag_line_names_file_and_record(recording_retrieve, tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [RAG[0], {"question": "缺答案？", "source": "capacitor.md"}])
    with pytest.raises(WattError, match=r"bad.jsonl record 2: field 'answer'"):
        grounded_task(path, TaskSettings(), recording_retrieve[0])
    with pytest.raises(WattError, match="retriever must return"):
        grounded_task(write_jsonl(tmp_path / "ok.jsonl", RAG[:1]), TaskSettings(), lambda q, k: [{"source": "x"}])


def test_cli_scores_grounded_with_kb_and_names_an_unknown_kb(tiny_kb, tiny_model_dir, tmp_path):
    from typer.testing import CliRunner

    from wattlm.eval.cli import eval_app

    registry, kb = tiny_kb
    add_model(registry, str(tiny_model_dir), name="tiny-cli")
    task = write_jsonl(tmp_path / "cli-rag.jsonl", RAG)
    home = ["--home", str(registry.home)]
    result = CliRunner().invoke(eval_app, ["run", "--model", "tiny-cli", "--kb", "tiny", "--task", str(task), "-k", "2",
                                           "--max-new-tokens", "4", "--json", *home])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert row["kind"] == "rag" and row["scores"]["rag:cli-rag:recall_at_3"] == 100.0
    missing = CliRunner().invoke(eval_app, ["run", "--model", "tiny-cli", "--kb", "nope", "--task", str(task), *home])
    assert missing.exit_code != 0 and "unknown knowledge base: 'nope'" in str(missing.exception or missing.output)
