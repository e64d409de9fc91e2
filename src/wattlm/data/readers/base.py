"""A reader: the text (or, for binary formats, the bytes) of one file -> documents.

A reader never sees undecoded bytes unless it is `binary` (the file source decodes them, see
encoding.py) and never raises for a bad record: it yields a `BadRecord` so the report can name the file
and line while the rest of the file is kept. A whole unreadable file is one `ReadError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from wattlm.data.document import BadRecord, Document, doc_id


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
