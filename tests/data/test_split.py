from wattlm.data.document import Document
from wattlm.data.split import split_documents
from wattlm.shared.text import split_score


def make_docs(n):
    return [Document(f"id{i}", "t", f"{i}.txt") for i in range(n)]


def test_split_is_a_function_of_id_and_seed():
    assert split_score("abc", 0) == split_score("abc", 0)
    assert split_score("abc", 0) != split_score("abc", 1)
    docs = make_docs(200)
    train, heldout = split_documents(docs, 0.1, seed=0)
    assert len(train) + len(heldout) == 200
    assert 8 <= len(heldout) <= 35
    # Adding documents does not move existing ones.
    train2, heldout2 = split_documents(docs + make_docs(400)[200:], 0.1, seed=0)
    assert {d.id for d in heldout} == {d.id for d in heldout2 if int(d.id[2:]) < 200}


def test_small_corpus_gets_one_of_each():
    for n in (2, 3):
        for seed in range(20):
            train, heldout = split_documents(make_docs(n), 0.1, seed)
            assert len(heldout) >= 1 and len(train) >= 1
    train, heldout = split_documents(make_docs(1), 0.1, 0)
    assert len(train) + len(heldout) == 1


def test_split_keeps_input_order():
    train, heldout = split_documents(make_docs(50), 0.3, 0)
    assert [d.id for d in train] == sorted((d.id for d in train), key=lambda x: int(x[2:]))
