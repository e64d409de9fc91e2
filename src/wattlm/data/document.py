"""The unit that flows through the data pipeline."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass
class Document:
    """One document: `text` is raw HTML until the extractor has run (then `meta["format"]` is "text")."""

    id: str
    text: str
    source: str  # path relative to its input root, plus "#N" for the Nth record of a JSONL/CSV file
    meta: dict[str, str] = field(default_factory=dict)

    def to_record(self) -> dict[str, object]:
        """The JSON object written to a shard."""
        return {
            "id": self.id,
            "text": self.text,
            "source": self.source,
            "lang": self.meta.get("lang", "other"),
            "chars": len(self.text),
        }


@dataclass(frozen=True)
class BadRecord:
    """A record a reader could not turn into a document (e.g. a bad JSONL line); counted, not raised."""

    message: str


def doc_id(source: str) -> str:
    """A stable id: it hashes the *relative* source, so moving the input folder keeps every id."""
    return hashlib.sha1(source.encode("utf-8")).hexdigest()[:16]
