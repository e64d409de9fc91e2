import math

from wattlm.shared.qa_format import qa_prompt
from wattlm.shared.text import (
    char_f1,
    exact_match,
    is_chinese,
    is_han,
    lcs_length,
    rouge_l,
    split_score,
    strip_front_matter,
    units,
)


def test_units_split_cjk_by_character_and_latin_by_word():
    assert units("SF6气体压力 0.5MPa！") == ["sf6", "气", "体", "压", "力", "0", "5mpa"]
    assert units("The breaker, an SF6 one.") == ["breaker", "sf6", "one"]


def test_exact_match_ignores_width_case_and_punctuation():
    assert exact_match("１１０千伏。", "110千伏") == 100.0
    assert exact_match("110千伏以上", "110千伏") == 0.0
    assert exact_match("The Relay", "relay") == 100.0


def test_char_f1_hand_computed():
    # 5 predicted characters, 3 reference characters, all 3 found: P 0.6, R 1 -> F1 0.75.
    assert math.isclose(char_f1("变电站巡视", "变电站"), 75.0)
    assert char_f1("油温", "电压") == 0.0
    # Multiset overlap: "电" counted once because the reference has it once.
    assert math.isclose(char_f1("电电", "电压"), 50.0)


def test_rouge_l_uses_order_while_f1_does_not():
    assert math.isclose(char_f1("主变压器油温", "油温主变压器"), 100.0)
    # LCS is "主变压器" (4 of 6 on both sides): P = R = 2/3.
    assert math.isclose(rouge_l("主变压器油温", "油温主变压器"), 200 / 3)
    # Word level for English: [cat sat on mat] vs [cat on mat], LCS 3: P 3/4, R 1.
    assert math.isclose(rouge_l("the cat sat on the mat", "cat on the mat"), 100 * 2 * 0.75 / 1.75)


def test_lcs_and_empty_cases():
    assert lcs_length("ABCBDAB", "BDCABA") == 4
    assert rouge_l("", "答案") == 0.0 and char_f1("", "答案") == 0.0
    assert rouge_l("", "") == 100.0


def test_han_detection_covers_the_extensions_and_not_kana():
    assert is_han("电") and is_han("\u3400") and is_han("\U00020000")
    assert not is_han("a") and not is_han("の") and not is_han("，")
    assert is_chinese("SF6 气体") and not is_chinese("SF6 gas の")


def test_qa_wording_follows_the_script_of_the_question():
    assert qa_prompt("额定电压是多少？", "材料一") == ("阅读材料，用简短的词语回答问题。\n材料：材料一\n问题：额定电压是多少？\n答案：", "")
    assert qa_prompt("What voltage?") == ("Question: What voltage?\nAnswer:", " ")
    assert qa_prompt("What voltage?", lang="zh")[0].startswith("问题：")


def test_front_matter_is_stripped_only_at_the_top():
    assert strip_front_matter("---\ntitle: x\n---\n正文\n---\nb\n---\n") == "正文\n---\nb\n---\n"
    assert strip_front_matter("正文\n---\na: 1\n---\n") == "正文\n---\na: 1\n---\n"


def test_split_score_is_seeded_and_the_same_as_the_data_stage_always_had():
    assert split_score("abc", 0) == split_score("abc", 0) != split_score("abc", 1)
    # sha256("0:abc") read as a big-endian 64-bit fraction: the value corpora were split with before the move.
    assert split_score("abc", 0) == int.from_bytes(bytes.fromhex("af933b62650d045f"), "big") / 2**64
    scores = [split_score(f"doc{i}", 7) for i in range(2000)]
    assert all(0 <= s < 1 for s in scores) and 0.45 < sum(scores) / len(scores) < 0.55
