from wattlm.kb.chunking import chunk_document, document_title
from wattlm.kb.config import KbConfig

RULES = """澄江地区电网调度管理规程

第一章 总则
第一条 为加强电网调度管理，制定本规程。
第二条 电网调度实行统一调度、分级管理的原则。

第二章 调度指令
第三条 调度指令分为综合指令、逐项指令和单项指令。
"""


def _chunks(text, **settings):
    return chunk_document(text, "rules.txt", "d1", document_title(text, "rules.txt"), KbConfig(**settings))


def test_offsets_index_the_document_exactly():
    text = "# 标题\n\n## 一、范围\n\n本规定适用于变电站。\n\n## 二、要求\n\n1. 严禁烟火；\n2. 定期检查。\n"
    for chunk in _chunks(text):
        assert text[chunk.start:chunk.end] == chunk.text


def test_numbered_chapters_become_the_heading_path_and_clauses_stay_together():
    chunks = _chunks(RULES)
    assert document_title(RULES, "x") == "澄江地区电网调度管理规程"
    headings = [c.heading for c in chunks]
    assert headings == ["第一章 总则", "第二章 调度指令"]
    assert "第一条" in chunks[0].text and "第二条" in chunks[0].text
    assert all(c.title == "澄江地区电网调度管理规程" for c in chunks)


def test_markdown_heading_path_nests():
    text = "# 规范\n\n## 一、作业条件\n\n### （一）天气\n\n风力不大于4级。\n\n## 二、人员\n\n不少于3人。\n"
    chunks = _chunks(text)
    assert [c.heading for c in chunks] == ["一、作业条件 > （一）天气", "二、人员"]
    assert chunks[0].title == "规范"


def test_a_long_paragraph_is_cut_at_sentence_ends_with_overlap():
    sentences = [f"第{i}句话讲的是变电站巡视的第{i}项要求，必须认真执行。" for i in range(1, 30)]
    text = "".join(sentences)
    chunks = _chunks(text, max_chars=120, overlap_chars=40)
    assert len(chunks) > 3
    for chunk in chunks:
        assert len(chunk.text) <= 120
        assert chunk.text.endswith("。")  # cut at a sentence end, never mid-sentence
    # Overlap: each chunk after the first starts with the previous chunk's last sentence.
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.start < before.end
        assert before.text.endswith(after.text[: after.text.index("。") + 1])


def test_english_sentences_split_on_periods():
    text = "Relay testing. " + " ".join(f"Step {i} checks the zone reach of the relay carefully." for i in range(30))
    chunks = _chunks(text, max_chars=160, overlap_chars=0)
    assert len(chunks) > 5 and all(c.text.endswith(".") for c in chunks)


def test_a_short_section_is_kept():
    assert [c.text for c in _chunks("见附件。")] == ["见附件。"]
    text = "# 规范\n\n## 一、总则\n\n本规定适用于全部变电站的运行维护工作。\n\n## 二、附件\n\n略。\n"
    assert [(c.heading, c.text) for c in _chunks(text)][-1] == ("二、附件", "略。")


def test_nothing_to_chunk():
    assert _chunks("   \n\n ") == []


def test_no_line_is_lost_when_numbered_lines_have_nothing_under_them():
    text = "巡视检查表\n\n1 主变压器\n1.1 检查油位\n1.2 检查油温\n1.3 检查呼吸器\n2 断路器\n2.1 检查SF6压力\n附件\n"
    chunks = _chunks(text)
    covered = "".join(c.text + c.heading for c in chunks)  # in a chunk's text, or in its heading path
    for line in text.splitlines()[2:]:
        assert line in covered, line
    assert any(c.heading == "1 主变压器" and "1.1 检查油位" in c.text for c in chunks)


def test_a_numbered_list_item_is_a_clause_not_a_heading():
    text = "# 规范\n\n## 操作顺序\n\n1. 拉开断路器\n2. 拉开负荷侧隔离开关\n3. 拉开电源侧隔离开关\n"
    chunks = _chunks(text)
    assert len(chunks) == 1 and chunks[0].heading == "操作顺序"
    assert "1. 拉开断路器" in chunks[0].text and "3. 拉开电源侧隔离开关" in chunks[0].text
