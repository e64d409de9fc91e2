"""A recipe with a `knowledge:` section on a tiny model: the run builds a KB over the documents, scores
the industry model and its foundation closed-book and grounded, gates on retrieval, reports both, and a
second run reuses the KB and every score."""

import json

import pytest

from wattlm.errors import WattError
from wattlm.models.store import add_model
from wattlm.recipe import load_recipe
from wattlm.registry import Registry
from wattlm.run.pipeline import run_recipe
from wattlm.run.summary import summary_table

DOCS = {
    "breaker.txt": "Breaker maintenance. The breaker operation counter is read every month; after 2000 operations "
                   "the breaker contacts are inspected and the SF6 gas pressure is checked. " * 2,
    "fire.md": "# Fire rules\n\nThe battery room is a no-smoking area. An electrical fire is fought with a dry "
               "powder or carbon dioxide extinguisher after the power is cut; never use water on live equipment. " * 2,
    "relay.txt": "Relay testing. Zone 1 of a distance relay must trip within 30 ms during the routine test; the "
                 "secondary circuit of a live current transformer is never opened. " * 2,
}
QA = [
    {"question": "After how many operations are the breaker contacts inspected?", "answer": "2000 operations",
     "context": "after 2000 operations the breaker contacts are inspected", "source": "breaker.txt"},
    {"question": "What extinguisher is used on an electrical fire?", "answer": "dry powder or carbon dioxide",
     "context": "An electrical fire is fought with a dry powder or carbon dioxide extinguisher", "source": "fire.md"},
    {"question": "How fast must zone 1 of a distance relay trip?", "answer": "within 30 ms",
     "context": "Zone 1 of a distance relay must trip within 30 ms", "source": "relay.txt"},
]


@pytest.fixture
def recipe_file(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name, text in DOCS.items():
        (raw / name).write_text(text)
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in QA))
    path = tmp_path / "recipe.yaml"
    path.write_text(
        "name: tinykb\nfoundation: tiny-base\n"
        "data: {inputs: [raw], heldout_fraction: 0.34, min_chars: 20, quality_filters: false, near_dedup: false}\n"
        "train: {steps: 2, seq_len: 32, batch_size: 2, lr: 0.005, warmup_steps: 1, bf16: false}\n"
        "eval: {seq_len: 64, max_tokens: 200, tasks: [qa.jsonl], max_new_tokens: 4}\n"
        "export: null\n"
        "knowledge:\n"
        "  chunking: {max_chars: 200}\n"
        "  retrieval: {mode: hybrid, k: 2}\n"
        "  gates:\n"
        "    - {metric: rag_recall_at_3, min_value: 90}\n"
        "    - {metric: rag_char_f1, baseline: rag_closed_char_f1, min_delta: -100}\n"
    )
    return path


def test_knowledge_section_builds_kb_scores_grounded_and_reuses(recipe_file, tiny_model_dir, tmp_path, monkeypatch):
    registry = Registry(tmp_path / "ws")
    add_model(registry, str(tiny_model_dir), name="tiny-base")
    recipe = load_recipe(recipe_file)

    first = run_recipe(recipe, registry, progress=False)
    assert not first.reused["kb"] and not first.reused["grounded_eval"]
    kb = registry.get(first.artifacts["kb"])
    assert kb.kind == "kb" and kb.name == "tinykb-kb" and kb.metrics["sources"] == 3
    assert kb.metrics["chunks"] >= 3
    # Sources are shown relative to the recipe folder, so the KB's key does not depend on the checkout.
    assert sorted(json.loads((kb.path / "kb.json").read_text())["sources"]) == \
        ["raw/breaker.txt", "raw/fire.md", "raw/relay.txt"]
    for role in ("foundation", "industry"):
        grounded = first.grounded[role]["rag:qa"]
        assert grounded["recall_at_3"] == 100.0 and "mrr" in grounded
        assert {"char_f1", "closed_char_f1"} <= set(grounded)
        assert "qa:qa:char_f1" in first.scores[role]  # the open-book task with its gold passage, as before
    assert [g["metric"] for g in first.gates] == ["rag_recall_at_3", "rag_char_f1"]
    assert all(g["passed"] for g in first.gates)

    rows = dict((label, value) for label, value in _rows(first.to_dict()))
    assert rows["retrieval qa"].startswith("recall@3 100.0, MRR")
    assert "closed-book" in rows["industry char-F1 qa"] and "grounded" in rows["industry char-F1 qa"]
    report = open(first.report_html, encoding="utf-8").read()
    assert "Knowledge base and grounded answers" in report and "retrieval qa" in report

    # The grounded tasks' retrieval is kept per KB content: a rerun neither loads the index nor embeds.
    import wattlm.kb.index

    def no_index(*args, **kwargs):
        raise AssertionError("the rerun loaded the KB index")
    monkeypatch.setattr(wattlm.kb.index, "load_index", no_index)
    second = run_recipe(recipe, registry, progress=False)
    assert second.reused["kb"] and second.reused["grounded_eval"], second.reused
    assert second.artifacts["kb"] == first.artifacts["kb"]
    assert second.grounded == first.grounded
    assert list((tmp_path / "ws" / "cache" / "retrieval").glob(f"{kb.cache_key}-hybrid.json"))


def _rows(summary: dict):
    table = summary_table(summary)
    labels, values = (list(column._cells) for column in table.columns)
    return zip(labels, values, strict=True)


def test_knowledge_gates_must_be_grounded_scores(recipe_file):
    text = recipe_file.read_text().replace("rag_recall_at_3", "qa_char_f1")
    recipe_file.write_text(text)
    with pytest.raises(WattError, match="knowledge.gates: qa_char_f1 is not a grounded score"):
        load_recipe(recipe_file)


def test_missing_knowledge_input_fails_before_any_work(recipe_file, tmp_path):
    from wattlm.errors import NotFound

    recipe_file.write_text(recipe_file.read_text().replace("knowledge:\n", "knowledge:\n  inputs: [nowhere]\n"))
    with pytest.raises(NotFound, match="knowledge input not found: .*nowhere .recipe field knowledge.inputs."):
        run_recipe(load_recipe(recipe_file), Registry(tmp_path / "ws-missing"), progress=False)
