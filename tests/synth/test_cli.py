"""`watt synth` through Typer: options reach the stage, results print as JSON, bad input is one line."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from wattlm.errors import WattError
from wattlm.synth.cli import synth_command

from .scripted import BEHAVIOURS, ScriptedEndpoint, passage_doc, scripted_server


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(synth_command)
    return app


def test_synth_against_an_endpoint_prints_json_and_caches(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for marker in ("alpha", "delta", "foxtrot"):
        (docs / f"{marker}.txt").write_text(passage_doc(marker), encoding="utf-8")
    assert set(BEHAVIOURS) >= {"alpha", "delta", "foxtrot"}
    endpoint = ScriptedEndpoint()
    with scripted_server(endpoint) as url:
        args = ["--data", str(docs), "--teacher-url", url, "--teacher-model", "big", "--name", "grid-qa",
                "--questions", "1", "--style", "chat", "--home", str(tmp_path / "ws"), "--json"]
        first = CliRunner().invoke(_app(), args)
        assert first.exit_code == 0, first.output
        payload = json.loads(first.output)
        assert payload["name"] == "grid-qa" and not payload["reused"]
        assert sum(payload["examples"].values()) == 2 and payload["dropped"] == {"ungrounded_answer": 1}
        again = CliRunner().invoke(_app(), args)
        assert again.exit_code == 0 and json.loads(again.output)["reused"] is True
        assert json.loads(again.output)["id"] == payload["id"]


def test_bad_options_are_clear_errors(tmp_path):
    home = ["--home", str(tmp_path / "ws")]
    docs = tmp_path / "d.txt"
    docs.write_text(passage_doc("alpha"))
    result = CliRunner().invoke(_app(), ["--data", str(docs), *home])
    assert isinstance(result.exception, WattError) and "--teacher-url" in str(result.exception)
    result = CliRunner().invoke(_app(), ["--data", str(docs), "--teacher-url", "http://127.0.0.1:9", *home])
    assert isinstance(result.exception, WattError) and "--teacher-model" in str(result.exception)
    result = CliRunner().invoke(_app(), ["--data", str(docs), "--teacher-url", "http://x", "--teacher-model", "m",
                                         "--kind", "poem", *home])
    assert isinstance(result.exception, WattError) and "watt synth options: field kinds" in str(result.exception)
    result = CliRunner().invoke(_app(), ["--data", "no-such-corpus", "--teacher", "gemma3-270m", *home])
    assert isinstance(result.exception, WattError) and "unknown dataset" in str(result.exception)
