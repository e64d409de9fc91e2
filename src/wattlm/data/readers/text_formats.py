"""Readers of text formats: plain text, Markdown, HTML, JSONL and CSV (decoded text -> documents)."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator

from wattlm.data.document import BadRecord, Document
from wattlm.data.readers.base import BaseReader, ReadError
from wattlm.shared.records import parse_jsonl
from wattlm.shared.text import strip_front_matter


class TextReader(BaseReader):
    extensions = (".txt",)

    def read(self, text: str, source: str) -> Iterator[Document | BadRecord]:
        yield self._doc(text, source)


class MarkdownReader(BaseReader):
    """Markdown is kept as written (it is good LM text); only the YAML front matter is metadata, not prose."""

    extensions = (".md", ".markdown")

    def read(self, text: str, source: str) -> Iterator[Document | BadRecord]:
        yield self._doc(strip_front_matter(text), source)


class HtmlReader(BaseReader):
    """Keeps the raw HTML: main-text extraction needs the markup to tell article from navigation."""

    extensions = (".html", ".htm")
    format = "html"

    def read(self, text: str, source: str) -> Iterator[Document | BadRecord]:
        yield self._doc(text, source)


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
