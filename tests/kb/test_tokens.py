from wattlm.kb.tokens import tokenize


def test_chinese_is_segmented_in_search_mode_and_function_words_dropped():
    words = tokenize("主变压器的轻瓦斯保护动作了")
    assert "变压器" in words and "瓦斯" in words and "保护" in words
    assert "的" not in words and "了" not in words


def test_latin_words_are_lowercased_and_kept_whole():
    assert tokenize("Check the SF6 gas-density relay, 110kV.") == ["check", "sf6", "gas-density", "relay", "110kv"]


def test_punctuation_only_gives_nothing():
    assert tokenize("？！。，") == []
