"""The run's timeline (shared/timeline.py) and how the summary and report show it, with the GGUF rows
labelled by tier and the grounded figures per tier; built from hand-made summaries, no model."""

import pytest

from wattlm.run.report import render_html
from wattlm.run.summary import grounded_rows, summary_paths, summary_table
from wattlm.shared.timeline import Timeline, recording, timed


def test_spans_nest_close_on_errors_and_record_nothing_without_a_timeline():
    with timed("nowhere") as span:
        assert span is None  # a stage called outside `watt run` pays nothing
    timeline = Timeline()
    with recording(timeline):
        with timed("industry eval") as stage:
            with timed("load tiny"):
                pass
            with pytest.raises(RuntimeError):
                with timed("mc grid-mc (tiny)"):
                    raise RuntimeError("a task failed")
        stage.note = "cached"
        with timed("industry eval"):
            pass
    with timed("after"):
        pass  # the timeline is no longer active
    spans = timeline.to_list()
    assert [(s["name"], s["depth"]) for s in spans] == [
        ("industry eval", 0), ("load tiny", 1), ("mc grid-mc (tiny)", 1), ("industry eval", 0)]
    assert all(s["seconds"] is not None and s["seconds"] >= 0 for s in spans)  # the failed one is closed too
    assert spans[1]["start"] >= spans[0]["start"] and spans[3]["start"] >= spans[2]["start"]
    assert spans[0]["note"] == "cached"
    assert set(timeline.stage_seconds()) == {"industry eval"}


def _summary() -> dict:
    export = {"quant": "q8_0", "size_mb": 285.9, "ppl": 46.78, "decode_tok_s": 72.9, "greedy_match": 3,
              "greedy_total": 16, "path": "/ws/ex/model-q8_0.gguf", "served": True}
    f16 = {"quant": "f16", "size_mb": 525.5, "path": "/ws/ex/model-f16.gguf", "served": False}
    return {
        "recipe": "grid", "seconds": 12.5, "reused": {"data": True}, "artifacts": {}, "model_path": "/ws/mo",
        "data": {"docs_in": 3, "docs_kept": 3}, "train": {"train_tokens": 10}, "task_train": {"train_tokens": 5},
        "scores": {"foundation": {"mc:grid-mc:acc": 25.0}, "industry": {"mc:grid-mc:acc": 30.0},
                   "task": {"qa:grid-qa:char_f1": 50.0}},
        "exports": [f16, export], "task_exports": [f16, export],
        "knowledge": {"id": "kb-1", "name": "grid-kb", "chunks": 9, "sources": 3},
        "grounded": {
            "industry": {"ragmc:grid-mc": {"acc": 55.0, "recall_at_3": 90.0, "mrr": 80.0},
                         "rag:grid-qa": {"closed_char_f1": 10.0, "char_f1": 40.0, "closed_key_recall": 12.0,
                                         "key_recall": 60.0, "recall_at_3": 95.0, "mrr": 85.0}},
            "task": {"rag:grid-qa": {"closed_char_f1": 20.0, "char_f1": 55.0, "closed_key_recall": 25.0,
                                     "key_recall": 70.0}}},
        "timeline": [{"name": "data", "depth": 0, "start": 0.0, "seconds": 1.0, "note": "cached"},
                     {"name": "industry eval", "depth": 0, "start": 1.0, "seconds": 8.0, "note": ""},
                     {"name": "load grid-industry", "depth": 1, "start": 1.0, "seconds": 2.0, "note": ""}],
        "stage_seconds": {"data": 1.0, "industry eval": 8.0},
        "report_html": "/ws/re/report.html", "report_json": "/ws/re/report.json", "log_file": "/ws/logs/run.log",
    }


def _rows(summary: dict) -> dict[str, str]:
    table = summary_table(summary)
    return dict(zip(table.columns[0]._cells, table.columns[1]._cells, strict=True))


def test_summary_labels_each_gguf_row_with_its_tier_and_shows_stage_times():
    rows = _rows(_summary())
    assert rows["GGUF industry q8_0"] == "285.9 MB, domain ppl 46.78, 72.9 tok/s, greedy 3/16 = transformers (served)"
    assert rows["GGUF task q8_0"] == rows["GGUF industry q8_0"]
    assert rows["GGUF industry f16"] == "525.5 MB"  # exported without the check: its size only
    assert "GGUF f16" not in rows and "GGUF task f16" in rows
    assert rows["stage times"] == "data 1 s, industry eval 8 s"
    labels = [label for label, _ in summary_paths(_summary())]
    assert labels == ["task model", "GGUF industry f16", "GGUF industry q8_0", "GGUF task f16", "GGUF task q8_0",
                      "report", "report json", "log"]


def test_grounded_figures_per_tier_closed_book_beside_grounded():
    rows = dict(grounded_rows(_summary()))
    assert rows["industry MC acc grid-mc"] == "closed-book 30.00 -> grounded 55.00"
    assert rows["industry char-F1 grid-qa"] == "closed-book 10.00 -> grounded 40.00"
    assert rows["industry key-char recall grid-qa"] == "closed-book 12.00 -> grounded 60.00"
    assert rows["task key-char recall grid-qa"] == "closed-book 25.00 -> grounded 70.00"
    assert rows["retrieval grid-mc"] == "recall@3 90.0, MRR 80.0"


def test_report_draws_the_timeline_and_labels_export_tables():
    page = render_html(_summary(), {})
    timeline = page[page.index("<h2>Timeline</h2>"):]
    assert 'aria-label="where the time went"' in timeline
    assert "load grid-industry" in timeline and "data (cached)" in timeline
    exports = page[page.index("<h2>GGUF exports</h2>"):page.index("<h2>Timeline</h2>")]
    assert exports.count("<td>industry</td>") == 2 and exports.count("<td>task</td>") == 2
