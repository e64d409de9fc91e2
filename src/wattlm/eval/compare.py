"""`watt eval compare`: the scores stored on several models side by side, as a table, HTML and JSON.

The HTML page is self-contained (inline SVG bars, no scripts) so it opens offline and can be attached
to a review; the JSON holds the same numbers for scripts. Both are written to a temp file and renamed.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from wattlm.eval.tasks import stored_metric
from wattlm.registry import Artifact, Registry
from wattlm.shared.charts import PALETTE, hbar_chart

_LEGACY_PPL = re.compile(r"^ppl:(?P<set>[^@]+)@")  # the run pipeline's `ppl:<set>/<split>@<id>` records


def model_scores(model: Artifact) -> dict[str, float]:
    """Every task score on an artifact under its stable name (a metric its task kind declares, pipeline
    perplexities included)."""
    scores = {}
    for key, value in model.metrics.items():
        if stored_metric(key) is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            scores[key] = float(value)
        elif (m := _LEGACY_PPL.match(key)) and isinstance(value, dict) and "ppl" in value:
            scores[f"ppl:{m['set']}:ppl"] = float(value["ppl"])
    return scores


def comparison(registry: Registry, models: list[Artifact]) -> dict:
    """{"models": [{id, name, tier}], "metrics": [names], "scores": {model id: {metric: value}}}."""
    scores = {m.id: model_scores(registry.get(m.id)) for m in models}
    metrics = sorted({k for s in scores.values() for k in s})
    better = {k: "higher" if stored_metric(k).higher_is_better else "lower" for k in metrics}
    return {"models": [{"id": m.id, "name": m.name, "tier": m.tier} for m in models], "metrics": metrics,
            "better": better, "scores": scores}


def _better(metric: str) -> str:
    """Which direction is better for a stored metric, as its task class declares it."""
    declared = stored_metric(metric)
    return "?" if declared is None else "higher" if declared.higher_is_better else "lower"


def render_table(payload: dict):
    from rich.table import Table

    table = Table("metric", "better", *(f"{m['name']}\n{m['id']}" for m in payload["models"]))
    for metric in payload["metrics"]:
        cells = [payload["scores"][m["id"]].get(metric) for m in payload["models"]]
        table.add_row(metric, _better(metric), *("-" if v is None else f"{v:.2f}" for v in cells))
    return table


def render_html(payload: dict) -> str:
    models = payload["models"]
    names = [m["name"] for m in models]
    # Two versions of one model name (a retrained model) get their ids so their bars stay apart.
    labels = [n if names.count(n) == 1 else f"{n} {m['id']}" for n, m in zip(names, models, strict=True)]
    head = "".join(f"<th>{html.escape(m['name'])}<br><small>{m['id']} {m['tier'] or ''}</small></th>" for m in models)
    rows = []
    charts = []
    for metric in payload["metrics"]:
        cells_by_model = [payload["scores"][m["id"]].get(metric) for m in models]
        values = {label: v for label, v in zip(labels, cells_by_model, strict=True) if v is not None}
        cells = "".join(f"<td>{'' if v is None else f'{v:.2f}'}</td>" for v in cells_by_model)
        rows.append(f"<tr><th>{html.escape(metric)}</th>{cells}</tr>")
        charts.append(hbar_chart([(label[:24], v) for label, v in values.items()],
                                 title=f"{metric} ({_better(metric)} is better)", colors=PALETTE,
                                 value_format="{:.2f}", width=460, label_width=170))
    return ("<!doctype html><html><head><meta charset='utf-8'><title>wattlm eval compare</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}svg{display:block;margin:1em 0}</style>"
            f"</head><body><h1>Model comparison</h1><table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"
            f"<p>Scores in points (0-100) except perplexity.</p>{''.join(charts)}</body></html>")


def write_comparison(payload: dict, html_path: Path) -> tuple[Path, Path]:
    """The HTML page and a JSON file beside it (same stem)."""
    json_path = html_path.with_suffix(".json")
    from wattlm.shared.records import atomic_write_text

    atomic_write_text(html_path, render_html(payload))
    atomic_write_text(json_path, json.dumps(payload, indent=2, ensure_ascii=False))
    return html_path, json_path
