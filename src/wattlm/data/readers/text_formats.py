"""Readers of text formats: plain text, Markdown, HTML, JSONL and CSV (decoded text -> documents).

Saved web pages rarely have the extension of their content: a crawler or blog exporter writes a `.txt`
or `.md` holding YAML front matter and then the page's HTML. So the text readers look at the content:
front matter (between `---` lines at the top) becomes document fields (title, date, author,
categories) and leaves the text, and a body that is HTML goes to the HTML extractor, whatever the
extension. A `.html` file whose body holds no markup at all is read as text.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
import sys
from collections.abc import Iterator
from typing import Any

from wattlm.data.document import BadRecord, Document
from wattlm.data.readers.base import BaseReader, ReadError
from wattlm.shared.records import parse_jsonl
from wattlm.shared.text import strip_front_matter

# YAML between two '---' lines at the very top (Jekyll/Hugo; Hugo may end it with '...'); a BOM may precede it.
_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)
# The front matter keys that become document fields (record keys), with the spellings exporters use.
FIELD_KEYS = {"title": ("title",), "date": ("date", "published", "pubdate"), "author": ("author", "authors"),
              "categories": ("categories", "category")}
# A page: a doctype or an <html>/<head>/<body> tag first, or mostly lines of block markup.
_PAGE_START = re.compile(r"\A\ufeff?\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b",
                         re.IGNORECASE | re.DOTALL)
_BLOCK_TAG = re.compile(
    r"</?(?:p|div|article|section|main|header|footer|nav|h[1-6]|ul|ol|li|table|tr|td|span|a|br)\b[^>]*>", re.IGNORECASE
)
_ANY_TAG = re.compile(r"<(?:[A-Za-z][A-Za-z0-9]*|!doctype)\b[^>]*>|</[A-Za-z][A-Za-z0-9]*\s*>", re.IGNORECASE)
_TAG_LINE = re.compile(r"\s*<[A-Za-z!/]")
# Fenced code blocks of Markdown: HTML shown as code (a tutorial) is not the page's markup.
_FENCE = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1[^\n]*$", re.MULTILINE | re.DOTALL)
MIN_BLOCK_TAGS = 3
MIN_TAG_LINE_SHARE = 0.5


def looks_like_html(text: str) -> bool:
    """Whether `text` is an HTML page or fragment, not prose with a few inline tags.

    Markdown may hold a `<br>` in a table, a `<details>` block or HTML shown in fenced code, and stays
    Markdown: besides a page start, it takes several block tags outside code fences *and* at least half
    of the non-blank lines outside them starting with a tag (a page saved as one long line is one such line)."""
    if _PAGE_START.match(text):
        return True
    text = _FENCE.sub("", text) if "```" in text or "~~~" in text else text
    if len(_BLOCK_TAG.findall(text, 0, 200_000)) < MIN_BLOCK_TAGS:
        return False
    lines = [line for line in text.splitlines() if line.strip()]
    return sum(1 for line in lines if _TAG_LINE.match(line)) >= MIN_TAG_LINE_SHARE * len(lines)


def _field_value(value: Any) -> str | list[str] | None:
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value).strip() or None
    if isinstance(value, list):
        items = [str(item).strip() for item in value if isinstance(item, (str, int, float)) and str(item).strip()]
        return items or None
    return None


def split_front_matter(text: str) -> tuple[dict[str, Any] | None, str]:
    """(fields, body): the document fields of the YAML front matter and the text after it.

    fields is None when there is no front matter block, or its YAML is not a mapping (a text that merely
    starts with a '---' rule is left whole); unknown keys are ignored.

    The pure-Python loader, not libyaml's CSafeLoader (5-10x faster): hypothesis found front matter
    (a tab at a line's end) that libyaml accepts and PyYAML's parser rejects, so the fields would change."""
    import yaml

    match = _FRONT_MATTER.match(text)
    if match is None:
        return None, text
    try:
        data = yaml.safe_load(match.group(1))
    except (yaml.YAMLError, ValueError):  # ValueError: a timestamp that is no date (`date: 2024-17-45`)
        return None, text
    if not isinstance(data, dict):
        return None, text
    fields: dict[str, Any] = {}
    for field, keys in FIELD_KEYS.items():
        value = next((_field_value(data[key]) for key in keys if data.get(key) is not None), None)
        if value is None:
            continue
        if field == "categories" and isinstance(value, str):
            value = [value]
        elif field != "categories" and isinstance(value, list):
            value = ", ".join(value)  # several authors: one string field
        fields[field] = value
    return fields, text[match.end():]


class SniffingReader(BaseReader):
    """A text, Markdown or HTML file judged by its content: front matter out, HTML to the extractor."""

    def read(self, text: str, source: str) -> Iterator[Document | BadRecord]:
        fields, body = split_front_matter(text)
        doc = self._doc(self.unmatched_front_matter(text) if fields is None else body, source)
        doc.meta["format"] = "html" if self.is_html(doc.text) else "text"
        doc.meta.update(fields or {})
        yield doc

    def is_html(self, text: str) -> bool:
        return looks_like_html(text)

    def unmatched_front_matter(self, text: str) -> str:
        """The text to use when no front matter mapping was found (the whole text, for plain text)."""
        return text


class TextReader(SniffingReader):
    extensions = (".txt",)


class MarkdownReader(SniffingReader):
    """Markdown is kept as written (it is good LM text); only the YAML front matter is metadata, not prose."""

    extensions = (".md", ".markdown")

    def unmatched_front_matter(self, text: str) -> str:
        # A Markdown front matter block is never prose, even when its YAML is broken or not a mapping.
        return strip_front_matter(text)


class HtmlReader(SniffingReader):
    """Keeps the raw HTML: main-text extraction needs the markup to tell article from navigation."""

    extensions = (".html", ".htm")
    format = "html"

    def is_html(self, text: str) -> bool:
        # Named HTML: any tag will do (a bare fragment is still a page); only tagless text is read as text.
        return _ANY_TAG.search(text) is not None


class JsonlReader(BaseReader):
    """One JSON object per line; `#N` in the source is the 1-based line number, so a record can be found."""

    extensions = (".jsonl",)

    def __init__(self, text_field: str = "text") -> None:
        self.text_field = text_field

    def read(self, text: str, source: str, first_line: int = 1) -> Iterator[Document | BadRecord]:
        """`first_line`: the line number of the text's first line (a piece of a split file)."""
        for line in parse_jsonl(text, first_line):  # blank lines (often a trailing newline) are not records
            line_no, record = line.number, line.value
            if line.error is not None:
                yield BadRecord(f"line {line_no}: {line.error}")
                continue
            value = record.get(self.text_field) if isinstance(record, dict) else None
            if not isinstance(value, str):
                yield BadRecord(f"line {line_no}: no string field '{self.text_field}'")
                continue
            yield self._doc(value, f"{source}#{line_no}")


class CsvReader(BaseReader):
    """A CSV with a header row; `#N` is the 1-based data row number."""

    extensions = (".csv",)

    def __init__(self, text_field: str = "text") -> None:
        self.text_field = text_field

    def read(self, text: str, source: str) -> Iterator[Document | BadRecord]:
        # Documents are long; the csv module's default cell limit (128 KiB) would reject real ones.
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
        rows = csv.DictReader(io.StringIO(text, newline=""))
        if rows.fieldnames is None or self.text_field not in rows.fieldnames:
            columns = ", ".join(rows.fieldnames or []) or "none"
            raise ReadError(f"no column '{self.text_field}' (columns: {columns})")
        try:
            for row_no, row in enumerate(rows, start=1):
                yield self._doc(row[self.text_field] or "", f"{source}#{row_no}")
        except csv.Error as err:
            raise ReadError(f"line {rows.line_num}: {err}") from None
