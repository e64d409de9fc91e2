from wattlm.data.dedup.paragraphs import ParagraphDedup
from wattlm.data.document import Document

CLAUSE = "工作许可人应在完成施工现场的安全措施后，会同工作负责人到现场再次检查所做的安全措施。"


def test_repeated_paragraph_is_kept_in_the_first_document_only():
    docs = [
        Document("a", f"甲文开头：巡视记录第一段，内容完全不同。\n{CLAUSE}", "a.txt"),
        Document("b", f"乙文开头：检修总结的第一段，另有其事。\n{CLAUSE}\n乙文结尾：以上。", "b.txt"),
        Document("c", f"{CLAUSE}", "c.txt"),  # nothing left but the clause -> dropped
        Document("d", "标题\n标题\n短行不计。", "d.txt"),  # short lines are never deduplicated
    ]
    step = ParagraphDedup(min_docs=2, min_chars=30, min_doc_chars=10)
    out = {d.id: d.text for d in step(docs)}
    assert CLAUSE in out["a"] and CLAUSE not in out["b"]
    assert out["b"] == "乙文开头：检修总结的第一段，另有其事。\n乙文结尾：以上。"
    assert "c" not in out and step.dropped == {"duplicate_paragraphs": 1}
    assert out["d"] == "标题\n标题\n短行不计。"
    assert step.report_extras() == {"paragraphs_removed": 2}


def test_min_docs_threshold():
    docs = [Document(str(i), f"第{i}篇的独有内容，足够长。\n{CLAUSE}", f"{i}.txt") for i in range(2)]
    step = ParagraphDedup(min_docs=3, min_chars=30, min_doc_chars=5)
    assert all(CLAUSE in d.text for d in step(docs)) and step.paragraphs_removed == 0
