"""Length filters: nothing left after cleaning, or too little text to learn from."""

from __future__ import annotations

from pydantic import Field

from wattlm.data.base import Filter, StepParams
from wattlm.data.document import Document


class EmptyFilter(Filter):
    """Nothing left after cleaning (an empty CSV cell, a page of only whitespace)."""

    name = "filter_empty"
    drop_reason = "empty"

    def keep(self, doc: Document) -> bool:
        return bool(doc.text.strip())


class MinCharsParams(StepParams):
    min_chars: int = Field(50, ge=0, description="Documents shorter than this many characters after cleaning are dropped.")


class MinCharsFilter(Filter):
    """Very short documents are mostly titles, stubs and error pages: too little text to learn from."""

    name = "filter_too_short"
    drop_reason = "too_short"
    Params = MinCharsParams

    def keep(self, doc: Document) -> bool:
        return len(doc.text) >= self.params.min_chars
