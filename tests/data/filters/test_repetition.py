from wattlm.data.document import Document
from wattlm.data.filters.repetition import (
    RepeatedLinesFilter,
    RepeatedNgramsFilter,
    duplicate_fractions,
    duplicate_ngram_fraction,
    tokens,
    top_ngram_fraction,
)

from ..helpers import ARTICLE_PARAGRAPHS


def test_duplicate_fractions():
    share, char_share = duplicate_fractions(["ab", "cd", "ab", "", "ab"])
    assert share == 0.5 and char_share == 0.5


def test_ngram_fractions():
    toks = ["a", "b", "a", "b", "c"]
    assert top_ngram_fraction(toks, 2) == 4 / 5  # ("a","b") twice covers 4 of 5 characters
    assert duplicate_ngram_fraction(toks, 2) == 4 / 5
    assert duplicate_ngram_fraction(["x", "y", "z"], 2) == 0.0
    chars, scale = tokens("变电站，变电站", "zh")
    assert chars == "变电站变电站" and scale == 2
    assert duplicate_ngram_fraction(chars, 3) == 1.0 and top_ngram_fraction(chars, 3) == 1.0
    assert tokens("The relay, the RELAY.", "en") == (["the", "relay", "the", "relay"], 1)


def test_repeated_lines_filter():
    step = RepeatedLinesFilter()
    spam = "\n".join(["点击这里领取优惠券，限时抢购！"] * 4 + ["正常的一句话。"])
    docs = [Document("ok", "\n".join(ARTICLE_PARAGRAPHS), "a", {"lang": "zh"}), Document("spam", spam, "b", {"lang": "zh"})]
    assert [d.id for d in step(docs)] == ["ok"] and step.dropped == {"repeated_lines": 1}


def test_repeated_ngrams_filter_uses_chinese_characters():
    step = RepeatedNgramsFilter()
    spam = "，".join(["变电站设备运行正常"] * 6) + "。今天检查了主变。"
    english_spam = " ".join(["buy cheap transformers now"] * 8)
    docs = [Document("ok", "\n".join(ARTICLE_PARAGRAPHS), "a", {"lang": "zh"}),
            Document("zh_spam", spam, "b", {"lang": "zh"}), Document("en_spam", english_spam, "c", {"lang": "en"})]
    assert [d.id for d in step(docs)] == ["ok"] and step.dropped == {"repeated_ngrams": 2}
