"""Exact deduplication on a normalised text hash; the first document in input order wins."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator

from wattlm.data.base import Step
from wattlm.data.document import Document

_WHITESPACE = re.compile(r"\s+")


def dedup_key(text: str) -> bytes:
    """Hash of the text without whitespace and case: copies that differ only in layout collide."""
    return hashlib.sha1(_WHITESPACE.sub("", text).casefold().encode("utf-8")).digest()


class ExactDedup(Step):
    """Keeps one document per `dedup_key`; 20 bytes per distinct document stay in memory."""

    name = "exact_dedup"
    phase = "dedup"

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[bytes] = set()

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        for doc in docs:
            key = dedup_key(doc.text)
            if key in self._seen:
                self.drop("exact_duplicate", doc)
                continue
            self._seen.add(key)
            yield doc
