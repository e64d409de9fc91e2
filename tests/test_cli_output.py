"""CLI output that reads in an 80-column terminal: verbs in pipeline order, whole tier words, whole paths."""

from __future__ import annotations

import io
import re

from rich.console import Console
from typer.testing import CliRunner

from wattlm.cli import VERB_ORDER, app
from wattlm.registry import Registry
from wattlm.run.cli import print_summary

NARROW = {"COLUMNS": "80", "LINES": "40"}


def registered_tiers(tmp_path) -> Registry:
    reg = Registry(tmp_path / "ws")
    base = reg.register("model", "gemma3-270m-power-grid-foundation", path=tmp_path, tier="foundation", format="hf")
    with reg.staging() as staged:
        corpus = reg.register("dataset", "power-grid-corpus", staged=staged, format="jsonl")
    with reg.staging() as staged:
        industry = reg.register("model", "power-grid-industry", staged=staged, tier="industry", format="hf",
                                parents=[(base.id, "parent"), (corpus.id, "train_data")])
    for quant in ("f16", "q4_k_m"):
        with reg.staging() as staged:
            reg.register("export", f"power-grid-industry-{quant}", staged=staged, tier="industry", format="gguf",
                         parents=[(industry.id, "parent")])
    return reg


def test_help_lists_verbs_in_pipeline_order():
    result = CliRunner().invoke(app, ["--help"], env=NARROW)
    assert result.exit_code == 0
    listed = [m.group(1) for line in result.stdout.splitlines() if (m := re.match(r"│ (\w+) {2,}", line))]
    assert listed == [verb for verb in VERB_ORDER if verb in listed]
    assert {"models", "data", "synth", "train", "eval", "export", "run", "serve", "keys", "lineage",
            "registry"} <= set(listed)


def test_models_list_fits_80_columns_with_short_ids_and_whole_tier_words(tmp_path):
    reg = registered_tiers(tmp_path)
    result = CliRunner().invoke(app, ["models", "list", "--all", "--home", str(reg.home)], env=NARROW)
    assert result.exit_code == 0, result.stdout
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for tier in ("foundation", "industry"):
        assert any(tier in line.split() for line in lines), tier
    assert not re.search(r"\bfounda\b|\bfound…|\bindus\b", result.stdout)
    for art in reg.list():
        assert art.id[:9] in result.stdout and art.id not in result.stdout  # short ids only
        assert any(art.name in line.split() for line in lines), art.name  # a 33-character name fits whole
    # A short id from the table works wherever an id does.
    shown = CliRunner().invoke(app, ["models", "show", reg.get("power-grid-industry").id[:9], "--home", str(reg.home)])
    assert '"name": "power-grid-industry"' in shown.stdout


def test_models_list_wide_has_full_ids_and_paths(tmp_path):
    reg = registered_tiers(tmp_path)
    result = CliRunner().invoke(app, ["models", "list", "--wide", "--home", str(reg.home)], env=NARROW)
    assert result.exit_code == 0, result.stdout
    for art in reg.list("model") + reg.list("export"):
        assert art.id in result.stdout and str(art.path) in result.stdout


def test_run_summary_prints_paths_whole_in_80_columns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    deep = tmp_path / "watt-home" / "artifacts" / "ex-0123456789abcdef" / "a-rather-long-folder-name-for-wrapping"
    outside = "/srv/shared/models/power-grid/artifacts/mo-0123456789/with/a/path/longer/than/eighty/columns/x"
    summary = {
        "recipe": "power-grid", "seconds": 12.5, "data": {"docs_in": 10, "docs_kept": 8}, "train": {},
        "scores": {}, "exports": [{"quant": "q4_k_m", "size_mb": 120, "decode_tok_s": 40, "greedy_match": 16,
                                   "greedy_total": 16, "path": str(deep / "model-q4_k_m.gguf")}],
        "model_path": outside, "report_html": str(tmp_path / "watt-home" / "report.html"), "report_json": "",
        "reused": {"data": True},
    }
    out = io.StringIO()
    print_summary(summary, Console(file=out, width=80))
    text = out.getvalue()
    assert "…" not in text
    assert outside in text  # outside the working directory: absolute, on one line however long
    assert "watt-home/artifacts/ex-0123456789abcdef/a-rather-long-folder-name-for-wrapping/model-q4_k_m.gguf" in text
    assert "watt-home/report.html" in text and str(tmp_path) not in text  # under the cwd: relative


def _leaf_commands(command, path=()):
    if hasattr(command, "commands"):  # a group (typer's own click types, so no isinstance on click's)
        for name, sub in command.commands.items():
            yield from _leaf_commands(sub, (*path, name))
    else:
        yield list(path), command


def test_every_verb_help_shows_every_option_whole_in_80_columns():
    import typer

    for path, command in _leaf_commands(typer.main.get_command(app)):
        result = CliRunner().invoke(app, [*path, "--help"], env=NARROW)
        assert result.exit_code == 0, path
        assert "…" not in result.stdout, f"watt {' '.join(path)} --help cuts text at 80 columns"
        shown = set(re.findall(r"--[\w-]+", result.stdout))
        for param in (p for p in command.params if not getattr(p, "hidden", False)):
            assert {o for o in param.opts if o.startswith("--")} <= shown, (path, param.name)


def test_narrow_safe_help_keeps_the_rich_layout_in_wide_terminals():
    wide = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "120", "LINES": "40"})
    narrow = CliRunner().invoke(app, ["serve", "--help"], env=NARROW)
    assert "╭─ Options" in wide.stdout and "--max-request-bytes" in wide.stdout
    assert "╭─" not in narrow.stdout and "--max-request-bytes" in narrow.stdout
