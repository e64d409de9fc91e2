"""A new teacher kind is one file plus one table entry, and `watt synth --teacher-kind` runs it end to end."""

import json

import pytest
from typer.testing import CliRunner

from tests.synth.echo_teacher import EchoTeacher
from tests.synth.scripted import passage_doc
from wattlm.cli import app
from wattlm.registry import Registry
from wattlm.synth.teachers import resolve


@pytest.fixture
def echo_kind(monkeypatch):
    monkeypatch.setitem(resolve.TEACHERS, "echo", EchoTeacher.from_spec)  # the one table entry


def test_toy_teacher_synthesizes_through_the_cli(echo_kind, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for marker in ("alpha", "bravo", "charlie"):
        (docs / f"{marker}.txt").write_text(passage_doc(marker), encoding="utf-8")
    args = ["synth", "--data", str(docs), "--teacher-kind", "echo", "--teacher", "echo-1", "--name", "echo-qa",
            "--questions", "1", "--home", str(tmp_path / "ws"), "--json"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    payload = json.loads(done.output)
    assert sum(payload["examples"].values()) == 3 and not payload["reused"]

    dataset = Registry(tmp_path / "ws").get("echo-qa", kind="dataset")
    assert dataset.meta["teacher"] == {"type": "echo", "name": "echo-1"}
    rows = [json.loads(line) for f in sorted(dataset.path.rglob("*.jsonl")) for line in f.read_text().splitlines()]
    assert len(rows) == 3 and {row["teacher"] for row in rows} == {"echo-1"}
    assert any("tested every six months" in json.dumps(row) for row in rows)

    again = CliRunner().invoke(app, args)  # the kind's describe() is in the cache key: reused
    assert again.exit_code == 0 and json.loads(again.output)["reused"] is True


def test_unknown_teacher_kind_names_the_table(tmp_path):
    (tmp_path / "d.txt").write_text(passage_doc("alpha"))
    done = CliRunner().invoke(app, ["synth", "--data", str(tmp_path / "d.txt"), "--teacher-kind", "echo",
                                    "--teacher", "x", "--home", str(tmp_path / "ws")])
    assert done.exit_code != 0 and "one of local, openai" in str(done.exception)
