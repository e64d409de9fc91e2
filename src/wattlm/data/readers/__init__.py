"""Readers, one small class per file format, dispatched on the file's extension (the table below)."""

from __future__ import annotations

from wattlm.data.readers.base import BaseReader, ReadError
from wattlm.data.readers.limits import FileRefused, ReadLimits
from wattlm.data.readers.office import DocxReader, PdfReader
from wattlm.data.readers.text_formats import CsvReader, HtmlReader, JsonlReader, MarkdownReader, TextReader

__all__ = ["BaseReader", "FileRefused", "ReadError", "ReadLimits", "make_readers"]


def make_readers(text_field: str = "text", limits: ReadLimits | None = None) -> dict[str, BaseReader]:
    """Extension (lower case, with dot) -> reader."""
    readers: list[BaseReader] = [
        PdfReader(),
        DocxReader(limits),
        TextReader(),
        MarkdownReader(),
        HtmlReader(),
        JsonlReader(text_field),
        CsvReader(text_field),
    ]
    return {ext: reader for reader in readers for ext in reader.extensions}
