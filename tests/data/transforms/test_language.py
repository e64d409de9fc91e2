from wattlm.data.document import Document
from wattlm.data.transforms.language import LanguageTagger, detect_lang


def test_detect_lang():
    assert detect_lang("变压器的额定容量为50 MVA，电压等级110kV，GB/T 1094标准。") == "zh"
    assert detect_lang("The transformer is rated at 50 MVA and 110 kV.") == "en"
    assert detect_lang("Трансформатор рассчитан на 50 МВА.") == "other"
    assert detect_lang("12345 !!!") == "other"


def test_chinese_varieties_and_traditional_are_zh():
    # py3langid answers 'wuu' / 'yue' for these; they are standard written Chinese.
    assert detect_lang("第1号规程：变电站值班人员应当定期检查") == "zh"
    assert detect_lang("台灣電力公司規定：輸電線路巡視人員") == "zh"
    assert detect_lang("これは日本語の文章です。") == "other"


def test_tagger_sets_meta_and_counts_mix():
    tagger = LanguageTagger()
    docs = [Document("1", "变电站巡视制度。", "a"), Document("2", "Substation patrol rules apply.", "b")]
    assert [d.meta["lang"] for d in tagger(docs)] == ["zh", "en"]
    assert tagger.mix == {"zh": 1, "en": 1}


def test_low_confidence_falls_back_to_script():
    assert detect_lang("Substation patrol rules apply.") == "en"  # py3langid: 'pcm' at 0.39
    assert detect_lang("Der Transformator ist für 50 MVA ausgelegt.") == "other"  # confident German
