"""Document filters: each keeps or drops a document and names the reason it drops."""

from __future__ import annotations

from wattlm.data.base import BaseFilter
from wattlm.data.document import Document


class EmptyFilter(BaseFilter):
    """Nothing left after cleaning (an empty CSV cell, a page of only whitespace)."""

    name = "filter_empty"
    drop_reason = "empty"

    def keep(self, doc: Document) -> bool:
        return bool(doc.text.strip())


class MinCharsFilter(BaseFilter):
    """Very short documents are mostly titles, stubs and error pages: too little text to learn from."""

    name = "filter_too_short"
    drop_reason = "too_short"

    def __init__(self, min_chars: int) -> None:
        super().__init__()
        self.min_chars = min_chars

    def keep(self, doc: Document) -> bool:
        return len(doc.text) >= self.min_chars
