"""A cheap language tag from character counts: enough to split a zh/en corpus and report its mix."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from wattlm.data.base import PipelineStep
from wattlm.data.document import Document

# A Chinese technical document is full of Latin acronyms, units and numbers (kV, GB/T, SCADA), so a
# minority of Han characters already means Chinese prose.
MIN_HAN_SHARE = 0.3
MIN_LATIN_SHARE = 0.7


def _is_han(ch: str) -> bool:
    code = ord(ch)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2FA1F


def detect_lang(text: str) -> str:
    """'zh', 'en' or 'other', from the share of Han and ASCII letters among all letters."""
    han = latin = letters = 0
    for ch in text:
        if _is_han(ch):
            han += 1
            letters += 1
        elif ch.isalpha():
            letters += 1
            latin += ch.isascii()
    if letters == 0:
        return "other"
    if han / letters >= MIN_HAN_SHARE:
        return "zh"
    if latin / letters >= MIN_LATIN_SHARE:
        return "en"
    return "other"


class LanguageTagger(PipelineStep):
    name = "tag_language"

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        for doc in docs:
            doc.meta["lang"] = detect_lang(doc.text)
            yield doc
