import pytest

from wattlm.data.document import Document
from wattlm.data.filters.char_ratios import (
    DigitRatioFilter,
    EndPunctuationFilter,
    ScriptRatioFilter,
    SymbolRatioFilter,
    digit_ratio,
    end_punctuation_share,
    script_ratio,
    symbol_ratio,
)

PROSE = "变电站值班人员应当定期检查主变压器的油温和负荷电流，发现异常立即向调度汇报。\nThe crew logs every check."


def test_ratios():
    assert script_ratio("ab12") == 0.5 and script_ratio("变电 站") == 1.0 and script_ratio("") == 0.0
    assert symbol_ratio("a|b|c#") == 0.5
    assert symbol_ratio("温度≥85℃，±5%") == 0.0  # units and maths are not junk
    assert digit_ratio("a1 2b") == 0.5
    assert end_punctuation_share("句子。\n菜单\n“引号。”\nline.") == 0.75


@pytest.mark.parametrize(("step", "bad_text", "reason"), [
    (ScriptRatioFilter(min_ratio=0.5), "1234 5678 9012 3456 / 7890 ; 1111", "low_script_ratio"),
    (SymbolRatioFilter(max_ratio=0.15), "### | * | * | ### ~~~ === 标题", "too_many_symbols"),
    (DigitRatioFilter(max_ratio=0.3), "读数 0012 0034 0056 0078 0090", "too_many_digits"),
    (EndPunctuationFilter(min_share=0.12), "首页\n新闻中心\n关于我们\n联系方式\n网站地图\n帮助\n下载\n论坛\n招聘", "few_sentence_lines"),
])
def test_each_filter_keeps_prose_and_drops_its_case(step, bad_text, reason):
    out = list(step([Document("good", PROSE, "g.txt"), Document("bad", bad_text, "b.txt")]))
    assert [d.id for d in out] == ["good"]
    assert step.dropped == {reason: 1}
    assert step.dropped_samples == [{"reason": reason, "source": "b.txt", "text": bad_text}]
