"""Content-addressed cache keys: the same recipe from a second checkout reuses every stage.

Two copies of one recipe folder at different paths (two clones, a moved folder, a CI runner) run against
one workspace: keys hash file bytes and the parents' content keys, never paths or artifact ids, so the
second run reuses data, train, eval, synth, the task tier and the exports and registers no model.
"""

import json
import shutil

from wattlm.models.store import add_model
from wattlm.recipe import load_recipe
from wattlm.registry import Registry
from wattlm.run.pipeline import run_recipe

from .test_task_tier import TOPICS, _doc, teacher_url  # noqa: F401 (a fixture)


def write_recipe(folder, teacher_url: str):  # noqa: F811 (a plain argument, not the fixture)
    (folder / "raw").mkdir(parents=True)
    for topic in TOPICS:
        (folder / "raw" / f"{topic}.txt").write_text(_doc(topic))
    (folder / "general").mkdir()
    (folder / "general" / "story.txt").write_text("The cat slept in the sun while the children played. " * 5)
    (folder / "qa.jsonl").write_text("".join(json.dumps({"question": f"When does the {t} crew start?",
                                                         "context": _doc(t), "answer": "at seven"}) + "\n"
                                             for t in TOPICS[:2]))
    # Named in the data section (decontamination): a file the data key must hash by content, not path.
    (folder / "decon.jsonl").write_text(json.dumps({"question": "Which moon of Jupiter has a subsurface ocean?",
                                                    "answer": "Europa"}) + "\n")
    (folder / "recipe.yaml").write_text(
        "name: tiny\nfoundation: tiny-base\n"
        "data: {inputs: [raw], heldout_fraction: 0.25, min_chars: 20, quality_filters: false, near_dedup: false,"
        " eval_sets: [decon.jsonl]}\n"
        "train: {steps: 2, seq_len: 32, batch_size: 2, lr: 0.005, warmup_steps: 1, bf16: false,"
        " replay: general, replay_ratio: 0.5}\n"
        "eval: {general: general, seq_len: 64, max_tokens: 200, max_new_tokens: 8}\n"
        "export: {quants: [q8_0], check_prompt: 'The crew', check_tokens: 4}\n"
        "task:\n"
        f"  teacher_url: {teacher_url}\n"
        "  teacher_model: big\n"
        "  synth: {questions_per_chunk: 1, min_chunk_chars_latin: 100, concurrency: 2}\n"
        "  train: {method: sft, steps: 2, seq_len: 64, batch_size: 2, lr: 0.005, warmup_steps: 1, bf16: false}\n"
        "  eval: [qa.jsonl]\n"
        "  export: true\n"
    )
    return folder / "recipe.yaml"


def test_a_second_clone_reuses_every_stage(tmp_path, tiny_model_dir, teacher_url):  # noqa: F811
    registry = Registry(tmp_path / "ws")
    add_model(registry, str(tiny_model_dir), name="tiny-base")
    first_clone = write_recipe(tmp_path / "clone-a" / "examples", teacher_url)
    second_clone = tmp_path / "elsewhere" / "clone-b" / "examples"
    shutil.copytree(first_clone.parent, second_clone)

    first = run_recipe(load_recipe(first_clone), registry, progress=False)
    assert not any(first.reused.values()), first.reused
    made = {(a.kind, a.name, a.id) for a in registry.list() if a.kind != "report"}

    second = run_recipe(load_recipe(second_clone / "recipe.yaml"), registry, progress=False)
    assert set(second.reused) == set(first.reused)
    assert all(second.reused.values()), second.reused
    assert {(a.kind, a.name, a.id) for a in registry.list() if a.kind != "report"} == made  # no new model, no copy
    assert second.artifacts == first.artifacts
    assert second.scores == first.scores

    # A changed input file is new content: the data stage (and all after it) is not reused.
    (second_clone / "raw" / "breaker.txt").write_text(_doc("breaker") + " The breaker log is kept for a year.")
    third = load_recipe(second_clone / "recipe.yaml")
    from wattlm.run.pipeline import corpus_dataset

    corpus, reused = corpus_dataset(registry, third, progress=False)
    assert not reused and corpus.id != first.artifacts["corpus"]
