import math

from wattlm.eval.scoring import char_f1, exact_match, lcs_length, rouge_l, score_answer, units


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


def test_best_of_several_answers():
    scores = score_answer("10千伏", ["110千伏", "10千伏"])
    assert scores == {"exact_match": 100.0, "char_f1": 100.0, "rouge_l": 100.0}
