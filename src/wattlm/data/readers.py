"""Readers: decoded file text -> documents, one small class per format, dispatched on extension.

A reader never sees bytes (the file source decodes them, see encoding.py) and never raises for a bad
record: it yields a `BadRecord` so the report can name the file and line while the rest of the file is
kept.
"""

from __future__ import annotations

import csv
import io
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator

from wattlm.data.document import BadRecord, Document, doc_id
from wattlm.shared.records import parse_jsonl
from wattlm.shared.text import strip_front_matter


class ReadError(ValueError):
    """A whole file cannot be read by its reader (one-line message)."""


class BaseReader(ABC):
    """Turns the text of one file into documents."""

    extensions: tuple[str, ...] = ()
    format: str = "text"  # "html" routes the document through the HTML extractor
    binary: bool = False  # True: the source passes raw bytes to `read_bytes` (PDF, DOCX)

    @abstractmethod
    def read(self, text: str, source: str) -> Iterator[Document | BadRecord]:
        """Yield documents (and bad records) found in `text`; `source` is the relative file path."""

    def read_bytes(self, data: bytes, source: str) -> Iterator[Document | BadRecord]:
        """Binary readers (`binary = True`) implement this instead of `read`."""
        raise NotImplementedError(f"{type(self).__name__} reads decoded text")

    def _doc(self, text: str, source: str) -> Document:
        return Document(id=doc_id(source), text=text, source=source, meta={"format": self.format})


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


def make_readers(text_field: str = "text") -> dict[str, BaseReader]:
    """Extension (lower case, with dot) -> reader."""
    from wattlm.data.binary_readers import DocxReader, PdfReader

    readers: list[BaseReader] = [
        PdfReader(),
        DocxReader(),
        TextReader(),
        MarkdownReader(),
        HtmlReader(),
        JsonlReader(text_field),
        CsvReader(text_field),
    ]
    return {ext: reader for reader in readers for ext in reader.extensions}
