"""Bad input never stops a build: each kind becomes a counted error or a processed document."""

import json

import typer
from typer.testing import CliRunner

from wattlm.data import DataConfig, build_corpus
from wattlm.data.cli import data_app

from .helpers import ARTICLE_PARAGRAPHS, sentence, write

HUGE_UNIT = "the feeder relay tripped at noon and the crew restored supply "


def make_bad_raw(root):
    write(root / "good.txt", sentence(1))
    (root / "zero.txt").write_bytes(b"")
    (root / "blob.txt").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 40)
    (root / "latin.txt").write_bytes(bytes(range(0x80, 0x100)) * 50)  # undecodable as any CJK encoding
    paragraphs = "".join(f"<p>{p}</p>" for p in ARTICLE_PARAGRAPHS)
    write(root / "truncated.html", f"<html><head><title>通知</title></head><body><article><h1>通知</h1>{paragraphs}<p>变电")
    (root / "corrupt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n%%EO")
    write(root / "records.jsonl", json.dumps({"text": sentence(2)}, ensure_ascii=False) + '\n{"text": "cut off\n[1, 2]\n')
    # ~20 MB on one line, no newline anywhere: read, cleaned and judged like any document.
    (root / "huge.txt").write_text(HUGE_UNIT * (20_000_000 // len(HUGE_UNIT)), encoding="utf-8")
    return root


def test_every_bad_input_kind_is_counted_never_raised(tmp_path):
    raw = make_bad_raw(tmp_path / "raw")
    report = build_corpus([raw], tmp_path / "out", DataConfig(min_chars=20, workers=2), progress=False)
    errors = {e.file: e.error for e in report.errors}
    assert report.files_seen == 8
    assert errors["zero.txt"] == "empty file"
    assert errors["blob.txt"] == "binary file (contains NUL bytes)"
    assert errors["corrupt.pdf"].startswith("corrupt or unreadable PDF")
    jsonl_errors = [e.error for e in report.errors if e.file == "records.jsonl"]
    assert [e.split(":")[0] for e in jsonl_errors] == ["line 2", "line 3"]  # bad JSON, a record that is no object
    assert errors["latin.txt"].startswith("binary or unknown encoding")
    assert report.files_failed == 4  # zero, blob, latin, corrupt.pdf; a bad JSONL line fails no file
    sources = {s["source"] for s in report.samples["kept"]} | {s["source"] for s in report.samples["dropped"]}
    assert "huge.txt" in sources or report.dropped  # the huge line was judged, not skipped
    texts = [json.loads(line)["text"] for split in ("train", "heldout")
             for path in sorted((tmp_path / "out" / split).glob("*.jsonl")) for line in path.open(encoding="utf-8")]
    assert sentence(1) in texts and sentence(2) in texts
    assert any(ARTICLE_PARAGRAPHS[1] in text for text in texts)  # the truncated page still yields its article
    assert report.docs_in == report.steps[0].docs_in and not (tmp_path / "out" / ".work").exists()


def test_cli_exit_code_says_whether_a_file_failed(tmp_path):
    runner, app = CliRunner(), typer.Typer()
    app.add_typer(data_app, name="data")  # as the main CLI mounts it
    write(tmp_path / "ok" / "a.txt", sentence(1))
    write(tmp_path / "ok" / "b.txt", sentence(2))
    home = ["--home", str(tmp_path / "home"), "--quiet"]
    good = runner.invoke(app, ["data", "build", str(tmp_path / "ok"), "--out", str(tmp_path / "o1"),
                                    "--min-chars", "20", *home])
    assert good.exit_code == 0, good.output
    (tmp_path / "ok" / "zero.md").write_bytes(b"")
    bad = runner.invoke(app, ["data", "build", str(tmp_path / "ok"), "--out", str(tmp_path / "o2"),
                                   "--min-chars", "20", "--format", "parquet", "--workers", "2", *home])
    assert bad.exit_code == 1, bad.output
    assert "1 file(s) failed" in bad.output
    assert sorted(p.name for p in (tmp_path / "o2" / "train").iterdir()) == ["shard-00000.parquet"]
