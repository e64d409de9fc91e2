"""The unit that flows through the data pipeline."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Front matter fields a reader found (readers/text_formats.py); columns of a corpus in which any document has one.
RECORD_FIELDS = ("title", "date", "author", "categories")


@dataclass
class Document:
    """One document: `text` is raw HTML until the extractor has run (then `meta["format"]` is "text")."""

    id: str
    text: str
    source: str  # path relative to its input root, plus "#N" for the Nth record of a JSONL/CSV file
    meta: dict[str, Any] = field(default_factory=dict)  # format, encoding, lang, front matter fields

    def to_record(self, fields: tuple[str, ...] = ()) -> dict[str, object]:
        """The JSON object written to a shard; `fields`: front matter keys to add, the same for every record of a
        corpus (see `record_fields`). They are strings, "" where a document has none and categories joined by
        ", ": a JSON loader (HF datasets) infers a column's type per shard file, and a shard whose values are
        all null or all [] gets a type that the next shard's strings cannot be cast to."""
        record: dict[str, object] = {
            "id": self.id,
            "text": self.text,
            "source": self.source,
            "lang": self.meta.get("lang", "other"),
            "chars": len(self.text),
        }
        for key in fields:
            value = self.meta.get(key) or ""
            record[key] = ", ".join(value) if isinstance(value, list) else value
        return record


def record_fields(docs: Iterable[Document]) -> tuple[str, ...]:
    """The front matter fields any of `docs` has, in RECORD_FIELDS order: a corpus without front matter
    keeps the five columns it always had."""
    present = {key for doc in docs for key in RECORD_FIELDS if key in doc.meta}
    return tuple(key for key in RECORD_FIELDS if key in present)


@dataclass(frozen=True)
class BadRecord:
    """A record a reader could not turn into a document (e.g. a bad JSONL line); counted, not raised."""

    message: str


def doc_id(source: str) -> str:
    """A stable id: it hashes the *relative* source, so moving the input folder keeps every id."""
    return hashlib.sha1(source.encode("utf-8")).hexdigest()[:16]
