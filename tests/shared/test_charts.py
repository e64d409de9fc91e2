import re

from wattlm.shared.charts import column_chart, hbar_chart, histogram, line_chart


def test_bars_scale_to_the_largest_value_and_escape_labels():
    svg = hbar_chart([("a<b", 10), ("c", 5)])
    assert svg.startswith("<svg") and svg.endswith("</svg>") and "a&lt;b" in svg and "10" in svg
    assert 'width="380"' in svg and 'width="190"' in svg  # 10 -> full bar, 5 -> half
    assert hbar_chart([]) == "<p>none</p>"


def test_titled_bars_cycle_their_colors_and_format_values():
    svg = hbar_chart([("m1", 50.0), ("m2", 25.0), ("m3", 0.0)], title="qa (higher is better)",
                     colors=("#111111", "#222222"), value_format="{:.2f}", width=460, label_width=170)
    assert 'aria-label="qa (higher is better)"' in svg and ">qa (higher is better)</text>" in svg
    assert re.findall(r'fill="(#\d+)"', svg) == ["#111111", "#222222", "#111111"]
    assert ">50.00<" in svg and ">0.00<" in svg and 'width="0"' in svg  # a zero is no bar


def test_columns_have_a_legend_only_for_named_series():
    grouped = column_chart({"industry": {"domain": 12.5, "general": 30.0}, "task": {"domain": 10.0}}, "perplexity")
    assert grouped.count("<rect") == 3 + 2  # three columns, two legend swatches
    assert "<title>domain: 12.5</title>" in grouped and ">general</text>" in grouped
    single = histogram([("0–100", 3), ("100–200", 6)])
    assert single.count("<rect") == 2 and "<title>6</title>" in single and "aria-label" not in single
    assert histogram([]) == "<p>none</p>"


def test_line_chart_has_one_point_per_step_and_skips_empty_series():
    svg = line_chart("training loss", {"loss": [3.0, 2.0, 1.5], "kl": []}, "loss per scored token")
    points = re.findall(r'points="([^"]+)"', svg)
    assert len(points) == 1 and len(points[0].split()) == 3
    assert "step 1..3 (loss per scored token)" in svg and ">3<" in svg and ">1.5<" in svg
    assert line_chart("nothing", {"loss": []}, "x") == ""
