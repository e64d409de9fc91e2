from wattlm.eval.scoring import score_answer


def test_best_of_several_answers():
    scores = score_answer("10千伏", ["110千伏", "10千伏"])
    assert scores == {"exact_match": 100.0, "char_f1": 100.0, "rouge_l": 100.0}
