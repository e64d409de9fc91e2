"""train_report.html: one self-contained page per trained model (inline SVG, no scripts, no network).

It shows the loss curve (and distillation's KL / CE parts), step times, throughput, the data the
method saw and the resolved training config, all read from the same dict as train_log.json.
"""

from __future__ import annotations

import html
import json

from wattlm.shared.charts import line_chart


def _table(rows: dict) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows.items())
    return f"<table>{cells}</table>"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


def render_train_report(config: dict, log: dict) -> str:
    step_seconds = log.get("step_seconds", [])
    summary = {
        "method": config.get("method"),
        "processes": log.get("processes", 1),
        "steps": log.get("train_steps"),
        "tokens": log.get("train_tokens"),
        "seconds": log.get("train_seconds"),
        "tokens/s": log.get("train_tokens_per_s"),
        "median step time (s)": round(_median(step_seconds), 3),
        "loss start → end": f"{log.get('train_loss_start')} → {log.get('train_loss_end')}",
    }
    parts = log.get("parts", {})
    charts = [line_chart("training loss", {"loss": log.get("losses", []), **parts}, "loss per scored token"),
              line_chart("step time", {"seconds": step_seconds}, "seconds per step")]
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}"
             "th{background:#f6f6f6;font-weight:normal}svg{display:block;margin:1em 0}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>training report</title>"
            f"<style>{style}</style></head><body><h1>Training report</h1>"
            f"<h2>Run</h2>{_table(summary)}{''.join(charts)}"
            f"<h2>Data</h2>{_table(log.get('data', {}))}"
            f"<h2>Config</h2>{_table(config)}</body></html>")
