"""Readers for binary office formats: PDF (pypdf) and DOCX (python-docx).

They take the file's bytes, not decoded text (the file source skips encoding detection for them).
Any failure inside the parser (truncated file, encrypted PDF, a ZIP that is not a DOCX) becomes one
ReadError naming the format, so the report counts the file and the run goes on. A DOCX is a zip: its
members are checked and decompressed under `ReadLimits` before python-docx sees it (a zip bomb fails as
`zip_bomb` / `zip_too_large`). pypdf bounds its own decompression (75 MB per stream in pypdf >= 6.0).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

from wattlm.data.document import BadRecord, Document
from wattlm.data.readers.base import BaseReader, ReadError
from wattlm.data.readers.limits import FileRefused, MiB, ReadLimits


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
        except pypdf.errors.LimitReachedError as err:  # a stream bomb: pypdf stopped decompressing at its cap
            raise FileRefused("stream_too_large", f"PDF stream over pypdf's limit ({str(err)[:120]})") from None
        except Exception as err:  # pypdf raises many types for damaged files; all mean "unreadable"
            raise ReadError(f"corrupt or unreadable PDF ({type(err).__name__}: {str(err)[:120]})") from None
        yield self._doc("\n\n".join(page.strip() for page in pages if page.strip()), source)


class DocxReader(BinaryReader):
    """Paragraphs in order, then table rows as tab-separated lines (specifications live in tables)."""

    extensions = (".docx",)

    def __init__(self, limits: ReadLimits | None = None) -> None:
        self.limits = limits or ReadLimits()

    def read_bytes(self, data: bytes, source: str) -> Iterator[Document | BadRecord]:
        import docx

        check_zip(data, self.limits)
        try:
            document = docx.Document(io.BytesIO(data))
            paragraphs = [p.text for p in document.paragraphs]
            rows = ["\t".join(cell.text.strip() for cell in row.cells) for t in document.tables for row in t.rows]
        except Exception as err:  # python-docx / zipfile / lxml errors on a damaged file
            raise ReadError(f"corrupt or unreadable DOCX ({type(err).__name__}: {str(err)[:120]})") from None
        yield self._doc("\n".join(line for line in paragraphs + rows if line.strip()), source)


def check_zip(data: bytes, limits: ReadLimits) -> None:
    """Refuse a zip whose members would decompress past the limits, before any parser opens it.

    The declared sizes are checked first (cheap: a bomb usually says what it is), then every member is
    decompressed in 1 MiB chunks and counted, because the central directory can lie; what python-docx
    then reads is the same bytes. Its XML parser does not resolve entities, so no "billion laughs"."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise ReadError(f"corrupt or unreadable DOCX (not a zip: {str(err)[:120]})") from None
    if len(members) > limits.max_zip_members:
        raise FileRefused("zip_bomb", f"DOCX holds {len(members)} files (limit max_zip_members={limits.max_zip_members})")
    declared = sum(member.file_size for member in members)
    if declared > limits.max_unzipped_bytes:
        raise FileRefused("zip_too_large", f"DOCX unzips to {declared} bytes "
                          f"(limit max_unzipped_bytes={limits.max_unzipped_bytes})")
    for member in members:
        ratio = member.file_size / max(1, member.compress_size)
        if member.file_size > MiB and ratio > limits.max_zip_ratio:
            raise FileRefused("zip_bomb", f"DOCX member {member.filename[:80]} expands {ratio:.0f}x "
                              f"(limit max_zip_ratio={limits.max_zip_ratio:g})")
    total = 0
    try:
        for member in members:
            with archive.open(member) as stream:
                while chunk := stream.read(MiB):
                    total += len(chunk)
                    if total > limits.max_unzipped_bytes:
                        raise FileRefused("zip_too_large", f"DOCX unzips to more than {limits.max_unzipped_bytes} "
                                          "bytes (limit max_unzipped_bytes)")
    except FileRefused:
        raise
    except Exception as err:  # zlib / CRC / unsupported compression: a damaged or crafted archive
        raise ReadError(f"corrupt or unreadable DOCX ({type(err).__name__}: {str(err)[:120]})") from None
