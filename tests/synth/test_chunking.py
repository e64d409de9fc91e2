"""Chunking: whole paragraphs under a script-aware budget, stable ids, short chunks skipped by reason."""

from wattlm.synth.chunking import Chunk, chunk_document, chunk_text, text_lang

LIMITS = {"zh": 60, "en": 200}
MIN = {"zh": 10, "en": 30}


def test_paragraphs_are_packed_whole_and_never_exceed_the_budget():
    paragraphs = [f"Paragraph {i} says something about transformers and their oil." for i in range(6)]
    text = "\n\n".join(paragraphs)
    chunks = chunk_text(text, LIMITS)
    assert all(len(c) <= LIMITS["en"] for c in chunks)
    assert len(chunks) > 1
    # every paragraph survives intact in exactly one chunk
    for paragraph in paragraphs:
        assert sum(paragraph in c for c in chunks) == 1


def test_chinese_uses_the_cjk_budget_and_lines_when_there_are_no_blank_lines():
    lines = [f"第{i}条：值班人员每两小时巡视一次变电站设备并记录。" for i in range(8)]
    chunks = chunk_text("\n".join(lines), LIMITS)
    assert text_lang(chunks[0]) == "zh"
    assert all(len(c) <= LIMITS["zh"] for c in chunks)
    assert len(chunks) >= 4  # a 200-character budget would have put everything in one or two
    assert chunks[0].startswith(lines[0])


def test_long_paragraph_is_cut_at_sentence_ends():
    sentence = "导线覆冰厚度达到设计值的百分之五十时发布黄色预警。"
    chunks = chunk_text(sentence * 6, LIMITS)
    assert all(c.endswith("。") for c in chunks)
    assert "".join(chunks) == sentence * 6
    english = "The relay trips the breaker. " * 12
    pieces = chunk_text(english, LIMITS)
    assert all(p.endswith(".") for p in pieces) and " ".join(pieces) == english.strip()


def test_a_sentence_longer_than_the_budget_is_hard_cut():
    chunks = chunk_text("电" * 150, LIMITS)
    assert [len(c) for c in chunks] == [60, 60, 30]


def test_ids_are_stable_and_short_chunks_are_counted():
    text = "短。\n\n" + "变电站值班员每班巡视一次主变压器，检查油温、油位和声音是否正常，并填写巡视记录。" * 2
    first = list(chunk_document("doc1", text, "train", {"zh": 50, "en": 200}, MIN))
    again = list(chunk_document("doc1", text, "train", {"zh": 50, "en": 200}, MIN))
    assert first == again
    chunks = [c for c in first if isinstance(c, Chunk)]
    assert [c.id for c in chunks] == [f"doc1#{c.index}" for c in chunks]
    assert all(c.split == "train" and c.lang == "zh" for c in chunks)
    assert "chunk_too_short" not in first  # "短。" is packed with the next paragraph, not left alone
    lone = list(chunk_document("d", "短句。", "train", LIMITS, MIN))
    assert lone == ["chunk_too_short"]
