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


# Content sniffing and front matter (saved web pages: tests/data/webtext/ holds whole examples).
PAGE = "<html><body><div><p>第一段正文。</p><p>第二段正文。</p></div></body></html>"


@pytest.mark.parametrize("reader", [TextReader(), MarkdownReader()])
def test_html_inside_txt_and_md_goes_to_the_extractor(reader):
    (doc,) = reader.read("---\ntitle: 页面\n---\n" + PAGE, "a")
    assert doc.meta["format"] == "html"
    assert doc.text == PAGE


def test_html_fragment_without_page_tags_is_sniffed():
    fragment = '<div class="post">\n<h1>标题</h1>\n<p>正文一。</p>\n<p>正文二。</p>\n</div>\n'
    (doc,) = MarkdownReader().read(fragment, "a.md")
    assert doc.meta["format"] == "html"


def test_markdown_with_inline_html_stays_markdown():
    text = "# 标题\n\n| 项目 | 说明 |\n| --- | --- |\n| 油温 | 顶层<br>绕组 |\n\n正文里有<b>加粗</b>和<span>一处</span>标记<a href=x>链接</a>。\n"
    (doc,) = MarkdownReader().read(text, "a.md")
    assert doc.meta["format"] == "text"
    assert doc.text == text


def test_markdown_showing_html_in_code_fences_stays_markdown():
    text = "# 网页结构入门\n\n一个最小的页面如下：\n\n```html\n<html>\n<body>\n<div>\n<p>你好</p>\n</div>\n</body>\n</html>\n```\n"
    (doc,) = MarkdownReader().read(text, "a.md")
    assert doc.meta["format"] == "text"


def test_html_file_without_markup_is_text():
    (doc,) = HtmlReader().read("只是一段保存成 .html 的纯文本。", "a.html")
    assert doc.meta["format"] == "text"
    (doc,) = HtmlReader().read("<p>一个片段</p>", "b.html")
    assert doc.meta["format"] == "html"


def test_front_matter_fields_and_their_shapes():
    text = ("---\ntitle: 巡视要点\ndate: 2025-03-18\nauthors: [王建平, 陈晓东]\ncategory: 运维\ntags: [x]\n"
            "layout: post\n---\n正文。\n")
    for reader in (TextReader(), MarkdownReader(), HtmlReader()):
        (doc,) = reader.read(text, "a")
        assert doc.text == "正文。\n"
        assert {k: doc.meta[k] for k in ("title", "date", "author", "categories")} == {
            "title": "巡视要点", "date": "2025-03-18", "author": "王建平, 陈晓东", "categories": ["运维"]}
        assert "tags" not in doc.meta and "layout" not in doc.meta
        assert doc.meta["categories"] == ["运维"]


def test_datetime_front_matter_and_records_without_fields():
    (doc,) = TextReader().read("---\ndate: 2025-01-09 21:30:00\n---\n正文。", "a.txt")
    assert doc.meta["date"] == "2025-01-09T21:30:00"
    (plain,) = TextReader().read("正文。", "b.txt")
    assert set(plain.to_record()) == {"id", "text", "source", "lang", "chars"}
    assert plain.to_record(("date",))["date"] == ""
    (doc,) = TextReader().read("---\ncategories: [甲, 乙]\n---\n正文。", "c.txt")
    assert doc.to_record(("title", "categories")) | {"id": ""} == {
        "id": "", "text": "正文。", "source": "c.txt", "lang": "other", "chars": 3, "title": "", "categories": "甲, 乙"}


def test_a_txt_that_starts_with_a_rule_is_not_front_matter():
    text = "---\n第一节的正文，不是元数据。\n---\n第二节。"
    (doc,) = TextReader().read(text, "a.txt")
    assert doc.text == text
    assert "title" not in doc.meta


def test_broken_front_matter_yaml_is_text_in_txt_and_stripped_in_md():
    text = "---\ntitle: [unclosed\n---\n正文。"
    (doc,) = TextReader().read(text, "a.txt")
    assert doc.text == text
    (doc,) = MarkdownReader().read(text, "a.md")
    assert doc.text == "正文。"
    assert "title" not in doc.meta


def test_front_matter_with_an_impossible_date_is_broken_yaml_not_a_crash():
    # PyYAML parses `2024-17-45` as a timestamp and raises ValueError building the date.
    text = "---\ntitle: 巡检\ndate: 2024-17-45\n---\n正文。"
    (doc,) = TextReader().read(text, "a.txt")
    assert doc.text == text
    (doc,) = MarkdownReader().read(text, "a.md")
    assert doc.text == "正文。" and "date" not in doc.meta
