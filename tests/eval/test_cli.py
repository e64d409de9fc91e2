import json

import pytest
from typer.testing import CliRunner

from wattlm.errors import WattError
from wattlm.eval.cli import eval_app
from wattlm.models.store import add_model
from wattlm.registry import Registry

runner = CliRunner()


@pytest.fixture
def models(home, tiny_model_dir):
    registry = Registry()
    base = add_model(registry, str(tiny_model_dir), name="base")
    child = registry.register("model", "child", path=tiny_model_dir, tier="industry", format="hf",
                              parents=[(base.id, "parent")])
    registry.close()
    return base, child


@pytest.fixture
def mc_file(tmp_path):
    path = tmp_path / "grid-mc.jsonl"
    path.write_text(json.dumps({"question": "额定频率？", "choices": ["50赫兹", "60赫兹"], "answer": 0},
                               ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def test_default_keeps_perplexity_on_text(models, tmp_path):
    text = tmp_path / "grid.txt"
    text.write_text("变电站巡视时，值班人员应当检查设备温度。" * 5, encoding="utf-8")
    result = runner.invoke(eval_app, ["--model", "base", "--text", str(text), "--json", "--seq-len", "64"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["model"] == "base" and payload["ppl"] > 1 and payload["split"] == "all"


def test_default_without_model_is_a_clear_error(models):
    result = runner.invoke(eval_app, [])
    assert isinstance(result.exception, WattError) and "--model" in str(result.exception)


def test_run_with_parent_then_cached(models, mc_file):
    base, child = models
    args = ["run", "--model", "child", "--task", str(mc_file), "--with-parent", "--json"]
    first = json.loads(runner.invoke(eval_app, args).stdout)
    assert [r["model_id"] for r in first] == [base.id, child.id]
    assert all("mc:grid-mc:acc" in r["scores"] and not r["reused"] for r in first)
    second = json.loads(runner.invoke(eval_app, args).stdout)
    assert all(r["reused"] for r in second)
    table = runner.invoke(eval_app, args[:-1])  # the same without --json: a table marking cached rows
    assert table.exit_code == 0 and "cached" in table.stdout and "acc_norm=" in table.stdout
    assert Registry().get(child.id).metrics["mc:grid-mc:acc"] == first[1]["scores"]["mc:grid-mc:acc"]


def test_compare_writes_html_and_json(models, mc_file, tmp_path):
    out = tmp_path / "report" / "cmp.html"
    result = runner.invoke(eval_app, ["compare", "base", "child", "--task", str(mc_file), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [m["name"] for m in payload["models"]] == ["base", "child"]
    assert "mc:grid-mc:acc_norm" in payload["metrics"]
    page = out.read_text(encoding="utf-8")
    assert page.count("<svg") == len(payload["metrics"]) and "mc:grid-mc:acc" in page
    assert json.loads(out.with_suffix(".json").read_text())["scores"] == payload["scores"]
    assert not list(out.parent.glob(".*tmp*"))
    table = runner.invoke(eval_app, ["compare", "base", "child", "--out", str(out)])
    assert table.exit_code == 0 and "mc:grid-mc:acc" in table.stdout


def test_compare_without_scores_says_how_to_get_them(models, tmp_path):
    result = runner.invoke(eval_app, ["compare", "base", "--out", str(tmp_path / "x.html")])
    assert isinstance(result.exception, WattError) and "--task" in str(result.exception)


def test_mounted_like_the_watt_app(models, tmp_path):
    """Mounted as `watt eval` (app.add_typer(eval_app, name="eval")): options after the verb still work."""
    import typer

    from wattlm.errors import NotFound

    app = typer.Typer()
    app.add_typer(eval_app, name="eval")

    @app.command()
    def other() -> None:  # a second command, so `eval` stays a named group as in the real app
        pass

    helped = runner.invoke(app, ["eval", "--help"])
    assert helped.exit_code == 0 and "compare" in helped.stdout and "run" in helped.stdout
    missing = runner.invoke(app, ["eval", "--model", "ghost", "--text", str(tmp_path), "--home", str(tmp_path / "ws")])
    assert isinstance(missing.exception, NotFound) and "ghost" in str(missing.exception)
