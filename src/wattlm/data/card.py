"""The dataset quality card: report.html, one self-contained page (inline SVG, no script, no CDN), so it
opens from a file share, an air-gapped machine or an e-mail attachment and shows the same numbers as
report.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path

from wattlm.data.report import DataReport
from wattlm.shared.charts import hbar_chart, histogram
from wattlm.shared.records import atomic_write_text

CHAR_COLOR = "#7aa35c"

_CSS = """
body{font-family:system-ui,"Noto Sans CJK SC","PingFang SC",sans-serif;margin:2em auto;max-width:980px;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;width:100%;font-size:.9em}td,th{border:1px solid #ddd;padding:4px 6px;
vertical-align:top;text-align:left}th{background:#f4f4f4}.num{text-align:right}.kpis{display:flex;gap:1em;
flex-wrap:wrap}.kpi{border:1px solid #ddd;border-radius:6px;padding:.5em 1em}.kpi b{display:block;
font-size:1.4em}.sample{white-space:pre-wrap;font-size:.85em;color:#444}svg text{font-size:12px}
"""


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    if not rows:
        return "<p>none</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="num">{cell:,}</td>' if isinstance(cell, int) else f'<td class="sample">{escape(str(cell))}</td>'
            for cell in row
        ) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _length_label(row: dict[str, int]) -> str:
    def short(n: int) -> str:
        return f"{n // 1000}k" if n >= 1000 else str(n)

    return f"≥{short(row['min_chars'])}" if row["max_chars"] < 0 else f"{short(row['min_chars'])}–{short(row['max_chars'])}"


def _bin_label(row: dict) -> str:
    def short(x: float) -> str:
        return f"{x:g}" if x < 1000 else f"{x / 1000:g}k"

    return f"≥{short(row['lo'])}" if row["hi"] < 0 else f"{short(row['lo'])}–{short(row['hi'])}"


def _learned_filter_sections(report: DataReport) -> list[str]:
    """Decontamination, quality-classifier and perplexity sections, for the filters that ran."""
    sections: list[str] = []
    contamination = report.contamination
    if contamination:
        ngram = contamination["ngram"]
        sections += [
            f"<h2>Eval contamination ({ngram['words']}-word / {ngram['hanzi']}-hanzi n-grams, "
            f"{contamination['eval_ngrams']:,} eval n-grams)</h2>",
            _table(["eval set", "items", "documents dropped"],
                   [(name, row["items"], row["docs_dropped"]) for name, row in contamination["eval_sets"].items()]),
            _table(["dropped document", "eval set", "shared n-gram"],
                   [(e["source"], e["eval_set"], e["ngram"]) for e in contamination["examples"]]),
        ]
    if report.quality_score_histogram:
        sections += ["<h2>Quality-classifier scores (all scored documents)</h2>",
                     histogram([(_bin_label(row), row["docs"]) for row in report.quality_score_histogram])]
    if report.perplexity_histogram:
        sections += ["<h2>Perplexity under the reference model (all scored documents)</h2>",
                     histogram([(_bin_label(row), row["docs"]) for row in report.perplexity_histogram])]
    return sections


def render_card(report: DataReport, title: str = "Dataset quality card") -> str:
    kpis = [("documents in", report.docs_in), ("kept", report.docs_kept), ("train", report.docs_train),
            ("held-out", report.docs_heldout), ("characters kept", report.chars_kept),
            ("files failed", report.files_failed), ("PII replaced", sum(report.pii.values()))]
    steps = [("read", report.docs_in)] + [(s.name, s.docs_out) for s in report.steps]
    step_chars = [("read", report.chars_in)] + [(s.name, s.chars_out) for s in report.steps]
    clusters = [
        (c["kept_source"], len(c["dropped"]),
         "\n".join(f'{d["source"]} (J≈{d["similarity"]})' for d in c["dropped"]), c["kept_example"])
        for c in report.near_dup_clusters
    ]
    sections = [
        f"<h1>{escape(title)}</h1>",
        '<div class="kpis">' + "".join(f'<div class="kpi">{escape(k)}<b>{v:,}</b></div>' for k, v in kpis) + "</div>",
        "<h2>Documents surviving each step</h2>", hbar_chart(steps),
        "<h2>Characters surviving each step</h2>", hbar_chart(step_chars, CHAR_COLOR),
        "<h2>Drop reasons</h2>", hbar_chart(sorted(report.dropped.items(), key=lambda kv: -kv[1])),
        "<h2>Length of kept documents (characters)</h2>",
        histogram([(_length_label(row), row["docs"]) for row in report.length_histogram]),
        "<h2>Language mix (kept documents)</h2>", hbar_chart(sorted(report.lang_mix.items(), key=lambda kv: -kv[1])),
        "<h2>PII replaced, by type</h2>", hbar_chart(sorted(report.pii.items(), key=lambda kv: -kv[1])),
        f"<h2>Near-duplicate clusters ({len(report.near_dup_clusters)})</h2>",
        _table(["kept", "dropped", "dropped copies", "kept text (start)"], clusters),
        f"<h2>Top removed boilerplate lines ({report.boilerplate_lines_removed:,} lines removed; "
        f"{report.paragraphs_removed:,} repeated paragraphs removed)</h2>",
        _table(["line (digits shown as 0)", "documents"], [(b["line"], b["docs"]) for b in report.boilerplate_top]),
        *_learned_filter_sections(report),
        "<h2>Samples kept</h2>",
        _table(["source", "lang", "text (start)"], [(s["source"], s["lang"], s["text"]) for s in report.samples.get("kept", [])]),
        "<h2>Samples dropped</h2>",
        _table(["reason", "source", "text (start)"],
               [(s["reason"], s["source"], s["text"]) for s in report.samples.get("dropped", [])]),
        "<h2>Files with errors</h2>", _table(["file", "error"], [(e.file, e.error) for e in report.errors]),
    ]
    body = "\n".join(sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{_CSS}</style></head><body>\n{body}\n</body></html>\n")


def write_card(report: DataReport, path: Path) -> None:
    atomic_write_text(path, render_card(report))
