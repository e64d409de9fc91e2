"""The run report: one self-contained HTML page with inline SVG charts (no JS, opens offline)."""

from __future__ import annotations

import html
import json

from wattlm.shared.charts import column_chart, line_chart, timeline_chart

CHARTED_GROUNDED = (":char_f1", ":closed_char_f1", ":acc")  # grounded scores drawn beside the task scores


def _table(rows: list[dict]) -> str:
    if not rows:
        return "<p>none</p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


SERVING_ROWS = (("file", "file"), ("llama.cpp decode, 1 stream (tok/s)", "raw_tok_s"),
                ("engine, 1 stream, t=0 (tok/s)", "single_t0_tok_s"), ("engine t=0, % of llama.cpp", "single_t0_pct_of_raw"),
                ("engine, 1 stream, t=0.8 (tok/s)", "single_t08_tok_s"),
                ("engine t=0.8, % of llama.cpp", "single_t08_pct_of_raw"), ("streams at once", "clients"),
                ("engine, all streams (tok/s)", "concurrent_tok_s"), ("all streams / one stream", "concurrent_x_single"),
                ("all streams: time to first token, median (ms)", "concurrent_ttft_p50_ms"),
                ("tokens per request", "tokens"), ("repeats (medians shown)", "repeats"))


def _serving(summary: dict) -> list[str]:
    """The served file's speed per tier: llama.cpp's own decode beside the batch engine (recipe export.serve_check)."""
    tiers = {tier: summary[key] for tier, key in (("industry", "serving"), ("task", "task_serving")) if summary.get(key)}
    if not tiers:
        return []
    clients = next(iter(tiers.values()))["clients"]
    groups: dict[str, dict[str, float]] = {}
    for tier, speed in tiers.items():
        for label, key in (("llama.cpp decode, 1 stream", "raw_tok_s"), ("engine, 1 stream, t=0", "single_t0_tok_s"),
                           ("engine, 1 stream, t=0.8", "single_t08_tok_s"),
                           (f"engine, {clients} streams", "concurrent_tok_s")):
            groups.setdefault(label, {})[tier] = speed[key]
    return ["<h2>Serving speed of the served file (tokens/s, this machine)</h2>",
            "<p>Timed in this run, in process: llama.cpp decoding the file directly (<code>Llama.generate</code>, "
            "greedy) against the batch engine of <code>watt serve</code>, one stream and several at once; medians "
            "of the repeats. bench/serve_bench.py times the HTTP server against llama-cpp-python's.</p>",
            column_chart(groups, "generated tokens per second", width=760),
            _table([{"measure": label, **{tier: speed.get(key) for tier, speed in tiers.items()}}
                    for label, key in SERVING_ROWS])]


def render_html(summary: dict, curves: dict[str, list[float]]) -> str:
    """curves: training loss per step of each tier trained in the run ({"industry": [...], "task": [...]})."""
    scores = summary.get("scores", {})
    perplexity: dict[str, dict[str, float]] = {}
    task_scores: dict[str, dict[str, float]] = {}
    for role, values in scores.items():
        for label, value in values.items():
            if label in ("domain", "general"):
                perplexity.setdefault(f"{label} ppl", {})[role] = value
            elif isinstance(value, (int, float)):  # "<kind>:<set>:<score>" in points or 0-1
                kind, rest = label.split(":", 1)
                if kind in ("rag", "ragmc") and not label.endswith(CHARTED_GROUNDED):
                    continue  # the rest of the grounded scores are in the knowledge table and the raw JSON
                # Grounded scores keep their kind: `rag:grid-qa:char_f1` beside `qa:grid-qa:char_f1`.
                task_scores.setdefault(label if kind in ("rag", "ragmc") else rest, {})[role] = value
    data = summary.get("data", {})
    funnel = {"documents": {"in": data.get("docs_in", 0), "kept": data.get("docs_kept", 0),
                            "train": data.get("docs_train", 0), "held-out": data.get("docs_heldout", 0)}}
    dropped = {reason: {"dropped": n} for reason, n in (data.get("dropped") or {}).items()}

    def exports(rows, tier):
        return [{"tier": tier, **{k: e.get(k) for k in ("quant", "served", "size_mb", "ppl", "decode_tok_s",
                                                         "greedy_match", "greedy_total", "path")}} for e in rows]
    sections = [
        f"<h1>wattlm run: {html.escape(summary.get('recipe', ''))}</h1>",
        f"<p>finished in {summary.get('seconds')} s; reused stages: "
        f"{html.escape(', '.join(k for k, v in summary.get('reused', {}).items() if v) or 'none')}</p>",
        "<h2>Perplexity by tier (lower is better)</h2>", column_chart(perplexity, "perplexity"),
    ]
    if task_scores:
        sections += ["<h2>Task scores by tier (higher is better)</h2>", column_chart(task_scores, "task scores", width=760)]
    if summary.get("knowledge"):
        from wattlm.run.summary import grounded_rows

        sections += ["<h2>Knowledge base and grounded answers</h2>",
                     "<p>Retrieval recall@3 / MRR over in-scope questions (points); each tier answers closed-book "
                     "(the question alone) and grounded (the KB's passages in the prompt).</p>",
                     _table([{"what": label, "value": value} for label, value in grounded_rows(summary)])]
    sections += [
        "<h2>Quality gates</h2>", _table([{k: g.get(k) for k in ("tier", "metric", "child", "parent", "limit", "passed", "message")}
                                          for g in summary.get("gates", [])]),
        "<h2>Training loss</h2>", *(line_chart(f"{role}: loss per step", {"loss": losses}, "loss per scored token")
                                      for role, losses in curves.items()),
        _table([summary.get("train", {})]),
    ]
    if summary.get("task_train"):
        sections.append(_table([summary["task_train"]]))
    sections += [
        "<h2>Data</h2>", column_chart(funnel, "documents through the pipeline"),
        column_chart(dropped, "drop reasons") if dropped else "<p>nothing dropped</p>",
    ]
    if summary.get("synth"):
        synth = summary["synth"]
        sections += ["<h2>Synthesized task data</h2>", _table([{k: v for k, v in synth.items() if not isinstance(v, dict)}]),
                     _table([{"question written by": k, "pairs": v} for k, v in (synth.get("question_source") or {}).items()]),
                     _table([{"dropped": k, "count": v} for k, v in (synth.get("dropped") or {}).items()])]
    sections += [
        "<h2>GGUF exports</h2>", _table(exports(summary.get("exports", []), "industry")),
        *(["<h3>task model</h3>", _table(exports(summary["task_exports"], "task"))] if summary.get("task_exports") else []),
        *_serving(summary),
        "<h2>Timeline</h2>",
        "<p>Each stage and its sub-steps on one time axis (seconds from the start of the run; <em>cached</em>: "
        "found in the registry, nothing recomputed).</p>",
        timeline_chart(summary.get("timeline") or [], "where the time went", width=860),
        "<h2>Artifacts</h2>", _table([{"role": k, "id": v} for k, v in summary.get("artifacts", {}).items()]),
        "<details><summary>raw JSON</summary><pre>"
        + html.escape(json.dumps(summary, indent=2, ensure_ascii=False)) + "</pre></details>",
    ]
    style = ("body{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}"
             "svg{display:block;margin:1em 0}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>wattlm run</title><style>{style}</style></head>" \
           f"<body>{''.join(sections)}</body></html>"
