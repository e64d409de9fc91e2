from wattlm.data.dedup.exact import ExactDedup, dedup_key
from wattlm.data.document import Document


def test_key_ignores_whitespace_and_case():
    assert dedup_key("Rated  Power\n\n110 kV") == dedup_key("rated power 110kv")
    assert dedup_key("rated power 110 kV") != dedup_key("rated power 220 kV")


def test_first_copy_wins():
    docs = [
        Document("a", "变压器 运行规程 Rev A", "a.txt"),
        Document("b", "另一份文件", "b.txt"),
        Document("c", "变压器运行规程\nrev a", "c.txt"),
    ]
    step = ExactDedup()
    assert [d.id for d in step(docs)] == ["a", "b"]
    assert step.dropped == {"exact_duplicate": 1}
