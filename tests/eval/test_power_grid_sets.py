"""The demo's eval sets parse, have the promised shape, and the harness YAML twin gives the same items."""

from pathlib import Path

from wattlm.eval.loaders import load_task, read_jsonl

EVAL = Path(__file__).resolve().parents[2] / "examples" / "power-grid" / "eval"
RAW = EVAL.parent / "raw"


def test_multiple_choice_set():
    task = load_task(EVAL / "power-grid-mc.jsonl")
    assert task.kind == "mc" and task.size >= 40
    assert all(len(i.choices) == 4 and len(set(i.choices)) == 4 for i in task.items)
    assert len({i.answer for i in task.items}) == 4  # the gold position varies
    assert all((RAW / r["source"]).exists() for r in read_jsonl(EVAL / "power-grid-mc.jsonl"))


def test_open_book_qa_set():
    records = read_jsonl(EVAL / "power-grid-qa.jsonl")
    assert len(records) >= 40
    for record in records:
        answers = record["answer"] if isinstance(record["answer"], list) else [record["answer"]]
        assert len(record["context"]) <= 300 and all(a in record["context"] for a in answers)
        assert (RAW / record["source"]).exists()
    task = load_task(EVAL / "power-grid-qa.jsonl")
    assert task.kind == "qa" and "材料：" in task.items[0].prompt


def test_harness_yaml_twin_matches_the_jsonl():
    ours = load_task(EVAL / "power-grid-mc.jsonl")
    harness = load_task(EVAL / "power-grid-mc-harness.yaml")
    assert harness.name == "power_grid_mc_harness"
    assert [(i.prompt, i.choices, i.answer, i.delimiter) for i in harness.items] == \
           [(i.prompt, i.choices, i.answer, i.delimiter) for i in ours.items]
