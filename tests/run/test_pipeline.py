"""The whole recipe on a tiny model: every stage real, second run fully cached."""

import json
import re
import subprocess
import sys

import pytest

from wattlm.lineage import lineage_chain
from wattlm.models.store import add_model
from wattlm.recipe import load_recipe
from wattlm.registry import Registry
from wattlm.run.pipeline import run_recipe

DOCS = {
    "a.txt": "Substation patrol: check the breaker counters, the oil level of the main transformer and the "
             "temperature of every cable joint. Record defects in the log before the shift ends. " * 3,
    "b.md": "---\ntitle: relay\n---\n# Relay settings\nThe dispatcher confirms relay protection settings "
            "before any switching operation and writes the order into the ticket. " * 3,
    "c.txt": "Live-line work needs a work permit, two qualified workers and a safety supervisor on site. "
             "Ground the line at both ends before touching the conductor. " * 3,
    "d.html": "<html><body><nav>Home | Login</nav><article><p>" + "Peak load arrives at seven in the evening; "
              "the dispatcher starts the pumped storage units and asks large users to shift demand. " * 3
              + "</p></article><footer>Copyright example grid</footer></body></html>",
    "e.txt": "Infrared thermography finds hot spots on disconnect switches; a rise above 20 kelvin "
             "is a serious defect that must be repaired within a week. " * 3,
}


@pytest.fixture
def recipe_file(tmp_path, tiny_model_dir):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name, text in DOCS.items():
        (raw / name).write_text(text)
    general = tmp_path / "general"
    general.mkdir()
    (general / "story.txt").write_text("The cat slept in the sun while the children played in the garden. " * 5)
    path = tmp_path / "recipe.yaml"
    path.write_text(
        "name: tiny\nfoundation: tiny-base\n"
        # The documents repeat a sentence to have enough tokens; the repetition and near-dup filters
        # (tested in tests/data) would rightly drop them, and this test is about the orchestration.
        "data: {inputs: [raw], heldout_fraction: 0.3, min_chars: 20, quality_filters: false, near_dedup: false}\n"
        "train: {steps: 6, seq_len: 32, batch_size: 2, lr: 0.005, warmup_steps: 1, bf16: false,"
        " replay: general, replay_ratio: 0.5}\n"
        "eval: {general: general, seq_len: 64, max_tokens: 400}\n"
        "export: {quants: [q8_0], serve: f16, check_prompt: 'The substation', check_tokens: 4,"
        " serve_check: {tokens: 16, clients: 2, repeats: 1}}\n"
    )
    return path


def test_recipe_runs_every_stage_then_reuses_everything(recipe_file, tiny_model_dir, tmp_path):
    registry = Registry(tmp_path / "ws")
    base = add_model(registry, str(tiny_model_dir), name="tiny-base")
    recipe = load_recipe(recipe_file)

    first = run_recipe(recipe, registry, progress=False)
    assert not any(first.reused.values())
    assert first.data["docs_kept"] == 5 and first.data["docs_heldout"] >= 1
    assert first.train["train_tokens"] == 6 * 2 * 32
    assert set(first.scores) == {"foundation", "industry"}
    assert all(v > 1 for scores in first.scores.values() for v in scores.values())
    assert [e["quant"] for e in first.exports] == ["f16", "q8_0"]
    # Only the served file is checked (llama.cpp greedy, speed, perplexity); the other has its size.
    assert [e["served"] for e in first.exports] == [True, False]
    assert first.exports[1]["ppl"] is None and first.exports[1]["size_mb"] > 0
    assert registry.get(first.artifacts["industry"]).metrics["served_quant"] == "f16"
    # The timeline: every stage, with sub-steps (one load of each model for all its scores).
    stages = [s["name"] for s in first.timeline if s["depth"] == 0]
    assert stages == ["foundation", "data", "industry train", "industry eval", "industry export"]
    steps = [s["name"] for s in first.timeline if s["depth"] >= 1]
    assert steps.count("load tiny-base") == 1 and steps.count("load tiny-industry") == 1
    assert {"convert f16", "quantize q8_0", "check f16"} <= set(steps) and "check q8_0" not in steps
    assert set(first.stage_seconds) == set(stages)
    # llama.cpp's perplexity of the f16 file on the held-out windows agrees with transformers'.
    hf_ppl = first.scores["industry"]["domain"]
    assert abs(first.exports[0]["ppl"] - hf_ppl) / hf_ppl < 0.02
    for export in first.exports:
        with open(export["path"], "rb") as fh:
            assert fh.read(4) == b"GGUF"
    report = json.loads(open(first.report_json).read())
    assert report["scores"] == first.scores
    assert "<svg" in open(first.report_html).read()
    # The served file timed against llama.cpp's own decode, in the report (chart and table) and its JSON.
    assert "serve check" in steps and report["serving"] == first.serving
    assert first.serving["file"] == "model-f16.gguf" and first.serving["clients"] == 2
    assert all(first.serving[k] > 0 for k in ("raw_tok_s", "single_t0_tok_s", "single_t08_tok_s", "concurrent_tok_s"))
    assert "Serving speed of the served file" in open(first.report_html).read()

    second = run_recipe(recipe, registry, progress=False)
    assert all(second.reused.values()), second.reused
    assert second.serving["raw_tok_s"] > 0  # this machine's speed now: timed again, never cached
    assert not any(s["name"].startswith("load ") for s in second.timeline)  # nothing loaded: all stored
    assert second.artifacts["industry"] == first.artifacts["industry"]
    assert second.scores == first.scores

    chain = lineage_chain(registry, first.artifacts["industry"])
    ids = [a["id"] for a in chain["chain"]]
    assert base.id in ids and first.artifacts["corpus"] in ids
    industry = next(a for a in chain["chain"] if a["id"] == first.artifacts["industry"])
    assert industry["tier"] == "industry"
    assert {p["role"] for p in industry["parents"]} == {"parent", "train_data", "replay_data"}
    assert any(k.startswith("ppl:tiny-corpus/heldout") for k in industry["metrics"])
    assert {e["name"] for e in chain["exports"]} == {"tiny-industry-f16", "tiny-industry-q8_0"}


def test_cli_run_json_and_lineage(recipe_file, tiny_model_dir, tmp_path):
    env_home = tmp_path / "cli-ws"
    watt = [sys.executable, "-m", "wattlm.cli", "--help"]
    base = [sys.executable, "-m", "wattlm.cli"]
    added = subprocess.run(base + ["models", "add", str(tiny_model_dir), "--name", "tiny-base", "--home",
                                   str(env_home), "--json"], capture_output=True, text=True, check=True)
    assert json.loads(added.stdout)["tier"] == "foundation"
    done = subprocess.run(base + ["run", str(recipe_file), "--home", str(env_home), "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    listed = json.loads(subprocess.run(base + ["models", "list", "--json", "--home", str(env_home)],
                                       capture_output=True, text=True, check=True).stdout)
    by_id = {m["id"]: m for m in listed}
    industry = by_id[summary["artifacts"]["industry"]]
    assert industry["tier"] == "industry" and industry["format"] == "hf"
    assert summary["artifacts"]["foundation"] in industry["parents"]
    lineage = json.loads(subprocess.run(base + ["lineage", "tiny-industry", "--json", "--home", str(env_home)],
                                        capture_output=True, text=True, check=True).stdout)
    assert [a["tier"] for a in lineage["chain"] if a["kind"] == "model"] == ["foundation", "industry"]
    assert subprocess.run(watt, capture_output=True).returncode == 0


def test_failed_gate_stops_before_export(recipe_file, tiny_model_dir, tmp_path):
    from wattlm.eval.gates import GateFailed

    registry = Registry(tmp_path / "ws")
    add_model(registry, str(tiny_model_dir), name="tiny-base")
    recipe_file.write_text(recipe_file.read_text() + "gates:\n  - {metric: domain_ppl, max_value: 1.0}\n")
    with pytest.raises(GateFailed, match=r"domain_ppl .* > 1.0"):
        run_recipe(load_recipe(recipe_file), registry, progress=False)
    assert registry.list("export") == []
    report = registry.list("report")[-1]
    gates = json.loads((report.path / "report.json").read_text())["gates"]
    assert gates[0]["passed"] is False and gates[0]["child"] > 1.0


def test_cli_run_keeps_llama_cpp_lines_off_the_terminal(recipe_file, tiny_model_dir, tmp_path):
    """The terminal of a tiny `watt run` (not --json): our progress, table and paths; llama.cpp's model
    load lines and per-tensor quantisation warnings are in the run's log file instead."""
    home = tmp_path / "noise-ws"
    base = [sys.executable, "-m", "wattlm.cli"]
    subprocess.run(base + ["models", "add", str(tiny_model_dir), "--name", "tiny-base", "--home", str(home)],
                   capture_output=True, check=True)
    recipe_file.write_text(recipe_file.read_text().replace("quants: [q8_0]", "quants: [q8_0, q4_k_m], check: all"))
    done = subprocess.run(base + ["run", str(recipe_file), "--home", str(home)], capture_output=True, text=True,
                          cwd=tmp_path)
    terminal = done.stdout + done.stderr
    assert done.returncode == 0, terminal
    assert "GGUF industry q4_k_m" in terminal and "stage times" in terminal
    for noise in ("llama_", "load:", "not divisible by", "ggml", "Converting and de-quantizing"):
        assert noise not in terminal, noise
    log_line = next(line for line in terminal.splitlines() if line.startswith("log:"))
    log_file = tmp_path / log_line.split(":", 1)[1].strip()
    text = log_file.read_text()
    assert "not divisible by 256" in text and "llama_model_loader" in text
    assert "wattlm.run INFO export" in text  # the run's own progress lines, beside llama.cpp's


def test_another_recipe_reuses_the_foundation_scores(recipe_file, tiny_model_dir, tmp_path):
    """The foundation's scores are keyed by its content and the eval sets' content, never by the recipe:
    a recipe that trains differently (or has another name) retrains, and never loads the foundation."""
    registry = Registry(tmp_path / "ws")
    add_model(registry, str(tiny_model_dir), name="tiny-base")
    recipe_file.write_text(re.sub(r"export: \{.*\}", "export: null", recipe_file.read_text()))  # scores only
    first = run_recipe(load_recipe(recipe_file), registry, progress=False)
    other = tmp_path / "other.yaml"
    other.write_text(recipe_file.read_text().replace("name: tiny", "name: tiny-longer").replace("steps: 6", "steps: 7"))
    second = run_recipe(load_recipe(other), registry, progress=False)
    assert not second.reused["train"] and second.artifacts["industry"] != first.artifacts["industry"]
    assert second.scores["foundation"] == first.scores["foundation"]
    loads = [s["name"] for s in second.timeline if s["name"].startswith("load ")]
    assert loads == ["load tiny-longer-industry"]
