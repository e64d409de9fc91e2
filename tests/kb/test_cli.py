"""`watt kb` end to end in a subprocess: JSON output, one-line errors, and resume after kill -9."""

import json
import os
import signal
import subprocess
import sys
import time

from tests.kb.conftest import write_docs, write_rag

WATT = [sys.executable, "-m", "wattlm.cli", "kb"]


def watt(*args, home):
    return subprocess.run(WATT + [str(a) for a in args] + ["--home", str(home)], capture_output=True, text=True,
                          timeout=600)


def one_line_error(out, *needles):
    assert out.returncode != 0
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in out.stderr, out.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_build_search_eval_and_bad_input(tmp_path):
    docs = write_docs(tmp_path / "docs")
    (docs / "blank.txt").write_text("  \n", "utf-8")  # yields no chunk: named, the rest is built
    home = tmp_path / "home"
    built = watt("build", docs, "--name", "demo", "--json", home=home)
    assert built.returncode == 0, built.stderr
    row = json.loads(built.stdout)
    assert row["chunks"] >= 5 and not row["reused"]
    assert row["files_without_chunks"] == [str(docs / "blank.txt")]
    from_data = json.loads(watt("build", "--data", "demo-documents", "--name", "demo-data", "--json", home=home).stdout)
    assert from_data["chunks"] == row["chunks"] and from_data["parents"] == row["parents"]
    assert json.loads(watt("build", docs, "--name", "demo", "--json", home=home).stdout)["reused"]

    hits = json.loads(watt("search", "demo", "蓄电池室的照明有什么要求", "-k", "2", "--json", home=home).stdout)
    assert hits[0]["source"] == str(docs / "fire_rules.txt") and hits[0]["supported"]
    assert {"source", "title", "heading", "text", "start", "end", "score", "supported", "superseded"} <= set(hits[0])
    text = watt("search", "demo", "红烧肉怎么做", home=home).stdout
    assert "no supported hit" in text

    task = write_rag(tmp_path / "rag.jsonl", [{"question": "How fast must zone 1 trip?", "source": "relay_en.txt"}])
    scores = json.loads(watt("eval", "demo", "--task", task, "--json", home=home).stdout)["scores"]
    assert scores["recall@1"] == 1.0
    shown = subprocess.run([sys.executable, "-m", "wattlm.cli", "models", "show", "demo", "--json", "--home", str(home)],
                           capture_output=True, text=True).stdout
    assert json.loads(shown)["metrics"]["rag:rag:hybrid:recall@1"] == 1.0

    one_line_error(watt("search", "nope", "x", home=home), "unknown knowledge base: 'nope'")
    (tmp_path / "bad.jsonl").write_text('{"question": "ok", "source": null}\n{"question":\n', "utf-8")
    one_line_error(watt("eval", "demo", "--task", tmp_path / "bad.jsonl", home=home), "bad.jsonl:2")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "blank.md").write_text("\n\n", "utf-8")
    one_line_error(watt("build", empty, "--name", "e", home=home), "no chunks", "blank.md")
    one_line_error(watt("build", tmp_path / "missing", "--name", "e", home=home), "missing")
    one_line_error(watt("remove", "demo", "nope.md", home=home), "nope.md")


def test_a_build_killed_while_embedding_resumes(tmp_path):
    sentences = "".join(f"第{i}条 第{i}号变电站的第{i}项巡视要求是检查设备编号{i}的温度与声音。\n" for i in range(1, 41))
    docs = write_docs(tmp_path / "docs", {"rules.txt": "巡视规定\n\n" + sentences})
    home = tmp_path / "home"
    args = WATT + ["build", str(docs), "--name", "big", "--embed-batch", "1", "--max-chars", "40", "-q",
                   "--home", str(home)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((home / "runs").glob("kb-*/batch-*.npz"))) < 3:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = len(list((home / "runs").glob("kb-*/batch-*.npz")))
    assert saved >= 3
    rerun = watt("build", docs, "--name", "big", "--embed-batch", "1", "--max-chars", "40", "--json", home=home)
    assert rerun.returncode == 0, rerun.stderr
    row = json.loads(rerun.stdout)
    assert not row["reused"]  # nothing was registered by the killed run
    assert row["embeddings_reused"] >= saved and row["embedded"] + row["embeddings_reused"] == row["chunks"]
    assert not list((home / "runs").glob("kb-*"))  # the work folder goes once the KB is registered
