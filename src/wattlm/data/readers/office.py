"""Readers for binary office formats: PDF (pypdf) and DOCX (python-docx).

They take the file's bytes, not decoded text (the file source skips encoding detection for them).
Any failure inside the parser (truncated file, encrypted PDF, a ZIP that is not a DOCX) becomes one
ReadError naming the format, so the report counts the file and the run goes on.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

from wattlm.data.document import BadRecord, Document
from wattlm.data.readers.base import BaseReader, ReadError


class BinaryReader(BaseReader):
    binary = True

    def read(self, text: str, source: str) -> Iterator[Document | BadRecord]:
        raise TypeError(f"{type(self).__name__} reads bytes: call read_bytes")


class PdfReader(BinaryReader):
    """The text layer of every page, pages separated by a blank line. Scanned PDFs have no text layer
    and come out empty (dropped later as `empty`); OCR is out of scope."""

    extensions = (".pdf",)

    def read_bytes(self, data: bytes, source: str) -> Iterator[Document | BadRecord]:
        import pypdf  # imported here: only corpora with PDFs pay for it

        try:
            pdf = pypdf.PdfReader(io.BytesIO(data))
            pages = [page.extract_text() or "" for page in pdf.pages]
        except Exception as err:  # pypdf raises many types for damaged files; all mean "unreadable"
            raise ReadError(f"corrupt or unreadable PDF ({type(err).__name__}: {str(err)[:120]})") from None
        yield self._doc("\n\n".join(page.strip() for page in pages if page.strip()), source)


class DocxReader(BinaryReader):
    """Paragraphs in order, then table rows as tab-separated lines (specifications live in tables)."""

    extensions = (".docx",)

    def read_bytes(self, data: bytes, source: str) -> Iterator[Document | BadRecord]:
        import docx

        try:
            document = docx.Document(io.BytesIO(data))
            paragraphs = [p.text for p in document.paragraphs]
            rows = ["\t".join(cell.text.strip() for cell in row.cells) for t in document.tables for row in t.rows]
        except Exception as err:  # python-docx / zipfile / lxml errors on a damaged file
            raise ReadError(f"corrupt or unreadable DOCX ({type(err).__name__}: {str(err)[:120]})") from None
        yield self._doc("\n".join(line for line in paragraphs + rows if line.strip()), source)
