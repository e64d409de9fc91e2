import pytest

from wattlm.errors import WattError
from wattlm.kb.retrieve import RETRIEVERS, Bm25Retriever, search


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_each_mode_finds_the_right_document(tiny_kb, mode):
    _, kb, _ = tiny_kb
    hits = search(kb, "电容器组退出运行后多久才能再次投入？", k=3, mode=mode)
    assert hits[0].source.endswith("capacitor.md")
    assert hits[0].heading == "一、投切要求"
    assert hits[0].title == "电容器组维护细则"


def test_hits_carry_offsets_into_the_cleaned_text(tiny_kb):
    _, kb, _ = tiny_kb
    hit = search(kb, "Zone 1 trip time", k=1)[0]
    assert hit.source.endswith("relay_en.txt") and "30 ms" in hit.text
    assert hit.end - hit.start == len(hit.text)


def test_superseded_documents_rank_below_those_in_force_and_are_flagged(tiny_kb):
    _, kb, _ = tiny_kb
    hits = search(kb, "多旋翼无人机与带电导线的安全距离", k=3)
    assert hits[0].source.endswith("uav_2025.md") and not hits[0].superseded
    old = next(h for h in hits if h.source.endswith("uav_2023.md"))
    assert old.superseded and old.superseded_by == "uav_2025.md"


def test_in_scope_is_supported_and_off_topic_is_not(tiny_kb):
    _, kb, _ = tiny_kb
    assert any(h.supported for h in search(kb, "电气设备着火能用水灭火吗？"))
    assert not any(h.supported for h in search(kb, "红烧肉怎么做才好吃？"))
    assert not any(h.supported for h in search(kb, "Who won the football world cup in 2018?"))


def test_unknown_mode_and_empty_query_are_one_line_errors(tiny_kb):
    _, kb, _ = tiny_kb
    with pytest.raises(WattError, match="unknown retrieval mode 'fuzzy'"):
        search(kb, "x", mode="fuzzy")
    with pytest.raises(WattError, match="empty query"):
        search(kb, "  ")


def test_a_new_retriever_is_one_class_and_one_table_entry(tiny_kb, monkeypatch):
    _, kb, _ = tiny_kb

    class Reversed(Bm25Retriever):
        name = "reversed"

        def rank(self, index, query, query_vector, n):
            return [(row, 1.0 / (i + 1)) for i, (row, _) in enumerate(reversed(super().rank(index, query, None, 50)))]

    monkeypatch.setitem(RETRIEVERS, "reversed", Reversed)
    best = search(kb, "电容器 无人机 灭火器", k=1, mode="bm25")[0]
    worst_first = search(kb, "电容器 无人机 灭火器", k=1, mode="reversed")[0]
    assert best.id != worst_first.id
