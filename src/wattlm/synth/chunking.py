"""Cut documents into passages a teacher can ask about.

A chunk is a run of whole paragraphs that fits a character budget; the budget depends on the script,
because a Chinese character carries about as much as a short English word (360 hanzi and 1000 Latin
characters are both roughly 250 tokens). A paragraph longer than the budget is cut at sentence ends,
and only a sentence longer than the budget is cut mid-text. Chunk ids are `doc_id#index`, stable for
the same document text and settings, so a dataset row always points back to its passage.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from wattlm.shared.text import is_han

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# A sentence ends after CJK or Latin end punctuation (plus closing quotes/brackets).
_SENTENCE_END = re.compile(r"[。！？!?；;][”’」』）)]*\s*|\.\s+")


@dataclass(frozen=True)
class Chunk:
    id: str  # doc_id#index
    doc_id: str
    index: int
    text: str
    lang: str  # "zh" or "en": the script that dominates the chunk
    split: str  # "train" or "heldout": follows the document


def cjk_share(text: str) -> float:
    """Hanzi among all letters (0 for text without letters)."""
    letters = [ch for ch in text if ch.isalpha()]
    return sum(map(is_han, letters)) / len(letters) if letters else 0.0


def text_lang(text: str) -> str:
    # Chinese technical text is full of Latin units and acronyms, so a minority of hanzi means Chinese.
    return "zh" if cjk_share(text) >= 0.3 else "en"


def _units(text: str) -> list[str]:
    """Paragraphs; a document without blank lines (one item per line, common in Chinese) splits on lines."""
    paragraphs = [p.strip() for p in _PARAGRAPH_BREAK.split(text) if p.strip()]
    if len(paragraphs) <= 1:
        paragraphs = [line.strip() for line in text.splitlines() if line.strip()]
    return paragraphs


def _split_long(paragraph: str, limit: int) -> list[str]:
    """Cut a paragraph longer than `limit` into sentence runs; hard-cut only a sentence over the limit."""
    sentences, start = [], 0
    for end in _SENTENCE_END.finditer(paragraph):  # the cut keeps the punctuation and space before it
        sentences.append(paragraph[start:end.end()])
        start = end.end()
    sentences.append(paragraph[start:])
    pieces: list[str] = []
    current = ""
    for sentence in sentences:
        while len(sentence) > limit:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:limit])
            sentence = sentence[limit:]
        if current and len(current) + len(sentence) > limit:
            pieces.append(current)
            current = ""
        current += sentence
    if current.strip():
        pieces.append(current)
    return [p.strip() for p in pieces if p.strip()]


def chunk_text(text: str, limits: dict[str, int]) -> list[str]:
    """Passages of `text`, each at most limits[lang] characters, made of whole paragraphs where possible."""
    limit = limits[text_lang(text)]
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for unit in _units(text):
        for piece in _split_long(unit, limit) if len(unit) > limit else [unit]:
            if current and size + 1 + len(piece) > limit:
                chunks.append("\n".join(current))
                current, size = [], 0
            current.append(piece)
            size += len(piece) + (1 if size else 0)
    if current:
        chunks.append("\n".join(current))
    return chunks


def chunk_document(doc_id: str, text: str, split: str, max_chars: dict[str, int],
                   min_chars: dict[str, int]) -> Iterator[Chunk | str]:
    """The chunks of one document; a chunk under its language's minimum yields the reason instead."""
    for index, passage in enumerate(chunk_text(text, max_chars)):
        lang = text_lang(passage)
        if len(passage) < min_chars[lang]:
            yield "chunk_too_short"
            continue
        yield Chunk(id=f"{doc_id}#{index}", doc_id=doc_id, index=index, text=passage, lang=lang, split=split)
