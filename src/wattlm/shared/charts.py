"""The one SVG chart module of every report page (data card, training report, run report, eval compare).

Charts are inline SVG strings: the pages that hold them open offline, from a file share or an e-mail
attachment, with no script and no CDN. Four kinds cover every report: horizontal bars (a value per
label), columns (values per group and series; one series is a histogram), lines (per-step series) and
a timeline (a run's stages and sub-steps on one time axis).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2")
BAR_COLOR = "#3b6ea8"
LABEL_WIDTH = 190
CHART_WIDTH = 640
ROW_HEIGHT = 22
NONE = "<p>none</p>"


def _open(width: float, height: float, title: str | None) -> list[str]:
    """The <svg> tag and, when titled, its bold heading (the title is also the accessible name)."""
    label = f' aria-label="{escape(title)}"' if title else ""
    parts = [f'<svg width="{width:.0f}" height="{height:.0f}" role="img"{label}>']
    if title:
        parts.append(f'<text x="0" y="14" font-weight="bold">{escape(title)}</text>')
    return parts


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:.3g}"


def hbar_chart(rows: Sequence[tuple[str, float]], color: str = BAR_COLOR, *, title: str | None = None,
               colors: Sequence[str] | None = None, value_format: str = "{:,}", width: int = CHART_WIDTH,
               label_width: int = LABEL_WIDTH) -> str:
    """Horizontal bars, one row per (label, value), scaled to the largest value; `colors` cycles per row."""
    if not rows:
        return NONE
    top = max(value for _, value in rows) or 1
    head = 24 if title else 0
    bar_space = width - label_width - 70
    parts = _open(width, ROW_HEIGHT * len(rows) + 4 + head, title)
    for i, (label, value) in enumerate(rows):
        y = head + i * ROW_HEIGHT + 2
        bar = max(1, round(bar_space * value / top)) if value else 0
        fill = (colors or (color,))[i % len(colors or (color,))]
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{bar}" height="{ROW_HEIGHT - 6}" fill="{fill}"/>'
            f'<text x="{label_width + bar + 4}" y="{y + 15}">{value_format.format(value)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def column_chart(groups: dict[str, dict[str, float]], title: str | None = None, width: int = 520, height: int = 240,
                 colors: Sequence[str] = PALETTE) -> str:
    """Grouped columns: groups = {group label: {series label: value}}; a legend names the series unless
    there is one unnamed series (then it is a histogram)."""
    if not groups:
        return NONE
    series = list(dict.fromkeys(s for values in groups.values() for s in values))  # first-seen order
    top = max([v for values in groups.values() for v in values.values()] + [1e-9])
    pad, bottom = 40, 30
    slot = (width - pad) / max(1, len(groups))
    bar_w = slot * 0.7 / max(1, len(series))
    legend = series != [""]
    parts = _open(width, height + (40 if legend else 0), title)
    for gi, (group, values) in enumerate(groups.items()):
        x0 = pad + gi * slot + slot * 0.15
        for si, name in enumerate(series):
            if name not in values:
                continue
            h = (height - bottom - 30) * values[name] / top
            x, y = x0 + si * bar_w, height - bottom - h
            tip = f"{escape(name)}: {_number(values[name])}" if name else _number(values[name])
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                         f'fill="{colors[si % len(colors)]}"><title>{tip}</title></rect>')
            parts.append(f'<text x="{x + bar_w / 2 - 1:.1f}" y="{y - 3:.1f}" font-size="11" '
                         f'text-anchor="middle">{_number(values[name])}</text>')
        parts.append(f'<text x="{x0 + slot * 0.35:.1f}" y="{height - 10}" font-size="12" '
                     f'text-anchor="middle">{escape(group)}</text>')
    for si, name in enumerate(series if legend else []):
        parts.append(f'<rect x="{pad + si * 120}" y="{height + 10}" width="12" height="12" '
                     f'fill="{colors[si % len(colors)]}"/><text x="{pad + si * 120 + 16}" y="{height + 21}" '
                     f'font-size="12">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram(rows: Sequence[tuple[str, float]], color: str = BAR_COLOR) -> str:
    """Columns for (bin label, count) rows: a column chart with one unnamed series."""
    width = min(CHART_WIDTH, 80 * len(rows) + 60)
    return column_chart({label: {"": value} for label, value in rows}, width=width, height=200, colors=(color,))


def _polyline(values: list[float], low: float, high: float, width: int, height: int, pad: int) -> str:
    span = (high - low) or 1.0
    step = (width - 2 * pad) / max(1, len(values) - 1)
    return " ".join(f"{pad + i * step:.1f},{pad + (high - v) / span * (height - 2 * pad):.1f}"
                    for i, v in enumerate(values))


def line_chart(title: str, series: dict[str, list[float]], y_label: str, width: int = 640, height: int = 260) -> str:
    """One or more per-step series sharing the y axis (empty series are left out; none at all -> "")."""
    series = {name: values for name, values in series.items() if values}
    if not series:
        return ""
    pad = 40
    low = min(min(v) for v in series.values())
    high = max(max(v) for v in series.values())
    n_steps = max(len(v) for v in series.values())
    parts = [f'<svg width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
             f'<rect x="{pad}" y="{pad}" width="{width - 2 * pad}" height="{height - 2 * pad}" fill="none" stroke="#ccc"/>',
             f'<text x="{pad}" y="{pad - 12}" font-size="13" font-weight="bold">{escape(title)}</text>',
             f'<text x="4" y="{pad + 4}" font-size="11">{high:.4g}</text>',
             f'<text x="4" y="{height - pad}" font-size="11">{low:.4g}</text>',
             f'<text x="{width / 2:.0f}" y="{height - 10}" font-size="11" text-anchor="middle">'
             f'step 1..{n_steps} ({escape(y_label)})</text>']
    for i, (name, values) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" '
                     f'points="{_polyline(values, low, high, width, height, pad)}"/>')
        parts.append(f'<text x="{width - pad - 4}" y="{pad + 14 + 14 * i}" font-size="11" fill="{color}" '
                     f'text-anchor="end">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def timeline_chart(spans: Sequence[dict], title: str | None = None, width: int = 760,
                   label_width: int = 260) -> str:
    """A Gantt chart: one row per span ({name, depth, start, seconds, note}), a bar from its start to its
    end on one time axis; sub-steps are indented under their stage and drawn lighter."""
    spans = [s for s in spans if s.get("seconds") is not None]
    if not spans:
        return NONE
    end = max(s["start"] + s["seconds"] for s in spans) or 1.0
    head = 24 if title else 0
    space = width - label_width - 80
    parts = _open(width, head + ROW_HEIGHT * len(spans) + 24, title)
    for i, span in enumerate(spans):
        y = head + i * ROW_HEIGHT + 2
        x = label_width + space * span["start"] / end
        bar = max(1.0, space * span["seconds"] / end)
        depth = span.get("depth", 0)
        label = "  " * depth + span["name"] + (f" ({span['note']})" if span.get("note") else "")
        fill = PALETTE[0] if depth == 0 else PALETTE[4]
        parts.append(
            f'<text x="{8 + 12 * depth}" y="{y + 15}" font-size="12">{escape(label)}</text>'
            f'<rect x="{x:.1f}" y="{y + 3}" width="{bar:.1f}" height="{ROW_HEIGHT - 6}" fill="{fill}">'
            f'<title>{escape(span["name"])}: {span["start"]:.1f} s + {span["seconds"]:.1f} s</title></rect>'
            f'<text x="{x + bar + 4:.1f}" y="{y + 15}" font-size="11">{span["seconds"]:.1f} s</text>'
        )
    axis_y = head + ROW_HEIGHT * len(spans) + 16
    parts.append(f'<text x="{label_width}" y="{axis_y}" font-size="11">0 s</text>'
                 f'<text x="{label_width + space:.0f}" y="{axis_y}" font-size="11" text-anchor="end">{end:.0f} s</text>')
    parts.append("</svg>")
    return "".join(parts)
