import pytest

from tests.kb.conftest import write_rag
from wattlm.errors import NotFound, WattError
from wattlm.kb.evaluate import evaluate_retrieval, load_rag_task, source_matches


def test_a_malformed_line_names_the_file_and_line(tmp_path):
    task = tmp_path / "rag.jsonl"
    task.write_text('{"question": "a", "answer": "b", "source": "x.md"}\n\n{"question": 3}\n', "utf-8")
    with pytest.raises(WattError, match=r"rag.jsonl:3: expected an object with a non-empty string 'question'"):
        load_rag_task(task)
    task.write_text('{"question": "a"\n', "utf-8")
    with pytest.raises(WattError, match=r"rag.jsonl:1: not valid JSON"):
        load_rag_task(task)
    task.write_text('{"question": "a", "source": 7}\n', "utf-8")
    with pytest.raises(WattError, match=r"rag.jsonl:1: 'source' must be"):
        load_rag_task(task)
    with pytest.raises(NotFound, match="missing.jsonl"):
        load_rag_task(tmp_path / "missing.jsonl")


def test_source_matching():
    assert source_matches("docs/a.md", "docs/a.md")
    assert source_matches("docs/a.md", "a.md")
    assert source_matches("docs/q.jsonl#3", "docs/q.jsonl")
    assert not source_matches("docs/a.md", "b/a.md")
    assert not source_matches("docs/ba.md", "a.md")


def test_recall_mrr_and_refusals(tiny_kb, tmp_path):
    _, kb, _ = tiny_kb
    task = write_rag(tmp_path / "rag.jsonl", [
        {"question": "电容器组退出运行后多久可以再次投入？", "answer": "5分钟", "source": "capacitor.md"},
        {"question": "How fast must zone 1 trip?", "answer": "30 ms", "source": "relay_en.txt"},
        {"question": "带电设备着火可以用水扑救吗？", "answer": "严禁", "source": "fire_rules.txt"},
        {"question": "红烧肉怎么做才好吃？", "answer": "", "source": None},
    ])
    result = evaluate_retrieval(kb, load_rag_task(task))
    scores = result["scores"]
    assert scores["questions"] == 3 and scores["out_of_scope"] == 1
    assert scores["recall@3"] == 1.0 and 0.0 < scores["mrr"] <= 1.0
    assert scores["refusal_rate"] == 1.0 and scores["false_refusals"] == 0.0
    # A wrong source is a miss: recall can fail.
    wrong = write_rag(tmp_path / "wrong.jsonl", [{"question": "How fast must zone 1 trip?", "source": "capacitor.md"}])
    assert evaluate_retrieval(kb, load_rag_task(wrong))["scores"]["recall@1"] == 0.0
