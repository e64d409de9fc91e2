import pytest

from wattlm.data.document import BadRecord, Document, doc_id
from wattlm.data.readers import ReadError, make_readers
from wattlm.data.readers.text_formats import CsvReader, HtmlReader, JsonlReader, MarkdownReader, TextReader


def docs_of(items):
    return [item for item in items if isinstance(item, Document)]


def test_text_reader_one_document_with_stable_id():
    (doc,) = TextReader().read("变压器运行规程", "rules/a.txt")
    assert doc.text == "变压器运行规程"
    assert doc.source == "rules/a.txt"
    assert doc.id == doc_id("rules/a.txt")


def test_markdown_front_matter_is_stripped():
    text = "---\ntitle: 运行规程\ntags: [grid]\n---\n# 第一章\n\n正文内容。\n"
    (doc,) = MarkdownReader().read(text, "a.md")
    assert doc.text == "# 第一章\n\n正文内容。\n"
    assert "title:" not in doc.text


def test_markdown_without_front_matter_is_unchanged():
    text = "# 标题\n\n---\n\n分隔线之后的正文。"
    (doc,) = MarkdownReader().read(text, "a.md")
    assert doc.text == text


def test_html_reader_keeps_markup_for_the_extractor():
    (doc,) = HtmlReader().read("<html><body><p>正文</p></body></html>", "a.html")
    assert doc.text.startswith("<html>")
    assert doc.meta["format"] == "html"


def test_jsonl_records_and_bad_lines():
    lines = [
        '{"text": "第一条记录"}',
        "{not json",
        "",
        '{"title": "no text field"}',
        '{"text": 42}',
        '["not", "an", "object"]',
        '{"text": "第七行的记录", "extra": 1}',
    ]
    items = list(JsonlReader().read("\n".join(lines) + "\n", "data/q.jsonl"))
    docs = docs_of(items)
    assert [(d.text, d.source) for d in docs] == [("第一条记录", "data/q.jsonl#1"), ("第七行的记录", "data/q.jsonl#7")]
    bad = [item.message for item in items if isinstance(item, BadRecord)]
    assert len(bad) == 4
    assert bad[0].startswith("line 2: invalid JSON")
    assert bad[1] == "line 4: no string field 'text'"
    assert bad[2].startswith("line 5:") and bad[3].startswith("line 6:")


def test_jsonl_custom_field_and_line_separator_inside_text():
    text = '{"content": "a\u2028b"}\n{"content": "c"}'
    docs = docs_of(JsonlReader("content").read(text, "x.jsonl"))
    assert [d.text for d in docs] == ["a\u2028b", "c"]


def test_csv_reader_uses_text_column():
    text = 'id,body\n1,"第一行,带逗号"\n2,"多行\n文本"\n'
    docs = docs_of(CsvReader("body").read(text, "t.csv"))
    assert [(d.text, d.source) for d in docs] == [("第一行,带逗号", "t.csv#1"), ("多行\n文本", "t.csv#2")]


def test_csv_missing_column_is_a_read_error():
    with pytest.raises(ReadError, match=r"no column 'text' \(columns: id, body\)"):
        list(CsvReader().read("id,body\n1,x\n", "t.csv"))


def test_dispatch_table():
    readers = make_readers()
    assert {ext: type(r).__name__ for ext, r in readers.items()} == {
        ".pdf": "PdfReader",
        ".docx": "DocxReader",
        ".txt": "TextReader",
        ".md": "MarkdownReader",
        ".markdown": "MarkdownReader",
        ".html": "HtmlReader",
        ".htm": "HtmlReader",
        ".jsonl": "JsonlReader",
        ".csv": "CsvReader",
    }
