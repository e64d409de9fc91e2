"""The hold-out check: 9 documents written for wattlm mixed with the sample corpus as distractors."""

import pytest

from tests.conftest import EXAMPLE
from wattlm.kb.cli import _origins, documents_dataset
from wattlm.kb.evaluate import evaluate_retrieval, load_rag_task
from wattlm.kb.stage import build_kb
from wattlm.registry import Registry

HOLDOUT = EXAMPLE / "kb-holdout"


@pytest.mark.integration
def test_holdout_recall_and_refusals(tmp_path):
    inputs = [HOLDOUT / "docs", EXAMPLE / "raw"]
    registry = Registry(tmp_path / "home")
    dataset = documents_dataset(registry, inputs, "holdout-documents", progress=False)
    kb, _ = build_kb(registry, dataset, "holdout", origins=_origins(inputs))
    items = load_rag_task(HOLDOUT / "rag.jsonl")
    scores = evaluate_retrieval(kb, items)["scores"]
    assert scores["questions"] == 30 and scores["out_of_scope"] == 6
    assert scores["recall@3"] >= 0.9
    assert scores["refused"] >= 5
    assert scores["false_refusals"] <= 0.1
    # The fusion (tuned on dev.jsonl, not on these questions) must not rank below BM25 alone on any measure.
    bm25 = evaluate_retrieval(kb, items, mode="bm25")["scores"]
    for metric in ("recall@1", "recall@3", "recall@5", "mrr"):
        assert scores[metric] >= bm25[metric], (metric, scores[metric], bm25[metric])
