"""A new filter is one file and one table entry: this file is that file, the monkeypatch the entry,
and the filter runs end to end through `watt data build --config`, its drop reason counted."""

from __future__ import annotations

import json

import pytest
from pydantic import Field
from typer.testing import CliRunner

from wattlm.cli import app
from wattlm.data.base import Filter, StepParams
from wattlm.data.document import Document
from wattlm.data.steps import STEPS

from .helpers import sentence, write


class DropIfContainsParams(StepParams):
    words: list[str] = Field(min_length=1, description="A document containing any of these words is dropped.")


class DropIfContains(Filter):
    """Drops documents that mention a banned word."""

    name = "drop_if_contains"
    drop_reason = "contains_banned_word"
    Params = DropIfContainsParams

    def keep(self, doc: Document) -> bool:
        return not any(word in doc.text for word in self.params.words)


CONFIG_YAML = """\
heldout_fraction: 0.3
steps:
  - {name: extract_html}
  - {name: normalize}
  - {name: tag_language}
  - {name: filter_too_short, params: {min_chars: 20}}
  - {name: drop_if_contains, params: {words: [广告, 促销]}}
  - {name: exact_dedup}
"""


@pytest.fixture
def plugin(monkeypatch):
    monkeypatch.setitem(STEPS, "drop_if_contains", DropIfContains)  # the one table entry


def build(tmp_path, config_text: str):
    write(tmp_path / "raw" / "a.txt", sentence(1))
    write(tmp_path / "raw" / "b.txt", sentence(2) + "本店大促销，欢迎选购。")
    write(tmp_path / "raw" / "c.txt", sentence(3))
    write(tmp_path / "cfg.yaml", config_text)
    return CliRunner().invoke(app, ["data", "build", str(tmp_path / "raw"), "--out", str(tmp_path / "out"),
                                    "--config", str(tmp_path / "cfg.yaml"), "--home", str(tmp_path / "home"),
                                    "--quiet"])


def test_toy_filter_runs_through_the_cli_and_counts_its_drop_reason(tmp_path, plugin):
    result = build(tmp_path, CONFIG_YAML)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text("utf-8"))
    assert report["dropped"] == {"contains_banned_word": 1}
    step = next(step for step in report["steps"] if step["name"] == "drop_if_contains")
    assert (step["docs_in"], step["docs_out"]) == (3, 2)
    assert [s["name"] for s in report["steps"]] == [
        "extract_html", "normalize", "tag_language", "filter_too_short", "drop_if_contains", "exact_dedup"]
    assert report["samples"]["dropped"][0]["reason"] == "contains_banned_word"
    texts = [json.loads(line)["text"] for split in ("train", "heldout")
             for shard in (tmp_path / "out" / split).glob("*.jsonl") for line in shard.read_text("utf-8").splitlines()]
    assert len(texts) == 2 and not any("促销" in text for text in texts)


def test_a_bad_param_of_the_new_step_names_the_step_and_the_file(tmp_path, plugin):
    result = build(tmp_path, CONFIG_YAML.replace("words: [广告, 促销]", "words: []"))
    assert result.exit_code != 0
    assert "cfg.yaml: field steps: step drop_if_contains: param words" in str(result.exception)


def test_without_the_table_entry_the_step_is_unknown(tmp_path):
    result = build(tmp_path, CONFIG_YAML)
    assert result.exit_code != 0
    assert "unknown step 'drop_if_contains'; known steps: decontaminate, exact_dedup" in str(result.exception)


def test_drop_reasons_must_be_snake_case():
    with pytest.raises(TypeError, match="not snake_case"):
        class Shouting(Filter):  # noqa: F841
            drop_reason = "Too-Loud"

            def keep(self, doc: Document) -> bool:
                return True
