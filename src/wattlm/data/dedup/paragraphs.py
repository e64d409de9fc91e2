"""Paragraph-level dedup across documents: a long paragraph that several documents repeat is kept in
the first of them only.

Near-dup removal works on whole documents; what it leaves are documents that share *some* paragraphs
(a safety clause quoted in every procedure, a standard disclaimer, a copied definition). Repeated
verbatim, such paragraphs are what a small model memorises instead of learning the domain. Short
paragraphs (headings, list labels) are never counted: their repetition is normal language.

A barrier step (it counts paragraphs over the whole corpus before yielding); paragraphs are the
non-blank lines of the normalised text, compared after whitespace and case folding.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Iterator

from pydantic import Field

from wattlm.data.base import Step, StepParams
from wattlm.data.document import Document

_WHITESPACE = re.compile(r"\s+")


def paragraph_key(paragraph: str) -> bytes:
    return hashlib.sha1(_WHITESPACE.sub("", paragraph).casefold().encode("utf-8")).digest()


class ParagraphDedupParams(StepParams):
    min_docs: int = Field(
        2, ge=1, description="A paragraph found in at least this many documents is kept in the first only."
    )
    min_chars: int = Field(30, ge=1, description="Shorter paragraphs (headings, list labels) are never deduplicated.")
    min_doc_chars: int = Field(
        50, ge=0, description="A document left shorter than this is dropped (keep it equal to filter_too_short's)."
    )


class ParagraphDedup(Step):
    """Removes paragraphs of >= `min_chars` that occur in >= `min_docs` documents, except in the first.

    A document left shorter than `min_doc_chars` is dropped (`duplicate_paragraphs`).
    """

    name = "paragraph_dedup"
    phase = "dedup"
    Params = ParagraphDedupParams

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self.paragraphs_removed = 0

    def _keys(self, doc: Document) -> list[bytes | None]:
        return [paragraph_key(line) if len(line.strip()) >= self.params.min_chars else None
                for line in doc.text.split("\n")]

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        held = list(docs)
        doc_counts: Counter[bytes] = Counter()
        for doc in held:
            doc_counts.update({key for key in self._keys(doc) if key is not None})
        repeated = {key for key, n in doc_counts.items() if n >= self.params.min_docs}
        seen: set[bytes] = set()
        for doc in held:
            kept_lines = []
            removed = 0
            for line, key in zip(doc.text.split("\n"), self._keys(doc), strict=False):
                if key in repeated:
                    if key in seen:
                        removed += 1
                        continue
                    seen.add(key)
                kept_lines.append(line)
            if removed:
                self.paragraphs_removed += removed
                doc.text = "\n".join(kept_lines).strip()
                if len(doc.text) < self.params.min_doc_chars:
                    self.drop("duplicate_paragraphs", doc)
                    continue
            yield doc

    def report_extras(self) -> dict[str, object]:
        return {"paragraphs_removed": self.paragraphs_removed}
