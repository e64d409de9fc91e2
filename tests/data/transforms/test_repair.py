from wattlm.data.transforms.normalize import normalize_text
from wattlm.data.transforms.repair import collapse_repeated_punctuation, repair_mojibake, strip_pinyin

CLEAN = "变电站巡视，注意安全。"


def test_mojibake_from_latin1_and_cp1252_is_undone():
    assert repair_mojibake(CLEAN.encode("utf-8").decode("latin-1")) == CLEAN
    cp1252 = "巡视记录".encode("utf-8").decode("cp1252", errors="strict")  # all four decode in cp1252
    assert repair_mojibake(f"标题：{cp1252}") == "标题：巡视记录"


def test_mojibake_repair_leaves_real_latin_text_alone():
    for text in ("café crème, naïve résumé", "Ångström ±5 %", CLEAN):
        assert repair_mojibake(text) == text


def test_pinyin_annotations_are_removed_but_abbreviations_stay():
    assert strip_pinyin("发(fā)电（diàn）站") == "发电站"
    assert strip_pinyin("压(ya1)力") == "压力"
    assert strip_pinyin("交流电(AC)，功率(kW)，断路器(QF)") == "交流电(AC)，功率(kW)，断路器(QF)"


def test_repeated_marks_collapse_but_ellipsis_and_dash_stay():
    assert collapse_repeated_punctuation("注意！！！！真的吗？？好。。。") == "注意！真的吗？好。"
    assert collapse_repeated_punctuation("他说……不——wait... ok!!") == "他说……不——wait... ok!"


def test_normalize_runs_repairs_and_can_skip_them():
    broken = CLEAN.encode("utf-8").decode("latin-1") + "\n发(fā)电！！"
    assert normalize_text(broken) == CLEAN + "\n发电！"
    assert normalize_text("发(fā)电！！", repair=False) == "发(fā)电！！"
