"""The unit that flows through the data pipeline."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

# Front matter fields a reader found (readers/text_formats.py); written into a record only when present.
RECORD_FIELDS = ("title", "date", "author", "categories")


@dataclass
class Document:
    """One document: `text` is raw HTML until the extractor has run (then `meta["format"]` is "text")."""

    id: str
    text: str
    source: str  # path relative to its input root, plus "#N" for the Nth record of a JSONL/CSV file
    meta: dict[str, Any] = field(default_factory=dict)  # format, encoding, lang, front matter fields

    def to_record(self) -> dict[str, object]:
        """The JSON object written to a shard."""
        record: dict[str, object] = {
            "id": self.id,
            "text": self.text,
            "source": self.source,
            "lang": self.meta.get("lang", "other"),
            "chars": len(self.text),
        }
        record.update((key, self.meta[key]) for key in RECORD_FIELDS if key in self.meta)
        return record


@dataclass(frozen=True)
class BadRecord:
    """A record a reader could not turn into a document (e.g. a bad JSONL line); counted, not raised."""

    message: str


def doc_id(source: str) -> str:
    """A stable id: it hashes the *relative* source, so moving the input folder keeps every id."""
    return hashlib.sha1(source.encode("utf-8")).hexdigest()[:16]
