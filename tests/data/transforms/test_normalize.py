from wattlm.data.document import Document
from wattlm.data.transforms.normalize import (
    Normalizer,
    collapse_whitespace,
    fold_compat,
    normalize_text,
    strip_controls,
    to_simplified,
)


def test_full_width_ascii_folds_but_chinese_punctuation_stays():
    text = "变压器型号ＳＦＺ１１－５００００／１１０，额定电压１１０ｋＶ。（试行）：见附表！"
    folded = fold_compat(text)
    assert "SFZ11" in folded and "110kV" in folded
    # Full-width punctuation is Chinese typography, not an accident: it must survive.
    for mark in "，。（）：！－／":
        assert mark in folded
    assert "," not in folded and "(" not in folded


def test_meaningful_compatibility_characters_survive():
    assert fold_compat("面积 100m² ① 第一项") == "面积 100m² ① 第一项"


def test_pdf_artifacts_fold():
    # Kangxi radical U+2F00 and a ligature, as PDF text layers emit them.
    assert fold_compat("\u2f00次\ufb01le\u200b") == "一次file"


def test_ideographic_space_and_indent():
    assert normalize_text("\u3000\u3000第一段正文\u3000内容") == "第一段正文 内容"


def test_traditional_to_simplified():
    assert to_simplified("電網調度規程：變壓器的額定容量") == "电网调度规程：变压器的额定容量"
    assert normalize_text("電網", simplify=False) == "電網"


def test_controls_removed_and_line_endings_unified():
    assert strip_controls("a\x00b\x07c\r\nd\re\tf\x0cg") == "abc\nd\ne f g"


def test_whitespace_collapses_and_paragraphs_stay():
    text = "  第一段   第一行  \n第一段第二行\n\n\n\n  第二段\t\t正文  \n\n"
    assert collapse_whitespace(text) == "第一段 第一行\n第一段第二行\n\n第二段 正文"


def test_normalizer_step_rewrites_text_and_counts():
    step = Normalizer(simplify=True)
    docs = [Document("1", "電網\u3000ＡＢＣ，", "a.txt"), Document("2", "  ", "b.txt")]
    out = list(step(docs))
    assert [d.text for d in out] == ["电网 ABC，", ""]
    assert (step.docs_in, step.docs_out) == (2, 2)
