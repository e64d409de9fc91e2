from wattlm.data.card import render_card
from wattlm.data.report import DataReport, StepStats


def test_card_shows_every_section_without_scripts():
    report = DataReport(
        docs_in=10, docs_kept=6, docs_train=5, docs_heldout=1, chars_in=1000, chars_kept=600,
        steps=[StepStats(name="scrub_pii", docs_in=10, docs_out=10, chars_in=1000, chars_out=990)],
        dropped={"near_duplicate": 3, "too_short": 1}, pii={"mobile": 4, "email": 2},
        near_dup_clusters=[{"kept_id": "k", "kept_source": "plan.txt", "kept_example": "覆冰应急预案",
                            "dropped": [{"id": "d", "source": "plan_2024.txt", "similarity": 0.94, "example": "x"}]}],
        boilerplate_top=[{"line": "查看: 0 | 回复: 0", "docs": 6}], lang_mix={"zh": 5, "en": 1},
        length_histogram=[{"min_chars": 0, "max_chars": 100, "docs": 6}],
        samples={"kept": [{"source": "a.txt", "lang": "zh", "text": "正文<b>"}],
                 "dropped": [{"reason": "too_short", "source": "t.txt", "text": "短"}]},
    )
    html = render_card(report)
    assert "<script" not in html and "http" not in html  # self-contained: no scripts, no CDN
    assert html.count("<svg") == 6  # docs and chars per step, drops, lengths, languages, PII
    for expected in ("plan_2024.txt (J≈0.94)", "查看: 0 | 回复: 0", "near_duplicate", "mobile", "正文&lt;b&gt;",
                     "too_short", "0–100"):
        assert expected in html, expected
