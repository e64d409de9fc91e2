from wattlm.data.lang import detect_lang


def test_detect_lang():
    assert detect_lang("变压器的额定容量为50 MVA，电压等级110kV，GB/T 1094标准。") == "zh"
    assert detect_lang("The transformer is rated at 50 MVA and 110 kV.") == "en"
    assert detect_lang("Трансформатор рассчитан на 50 МВА.") == "other"
    assert detect_lang("12345 !!!") == "other"
