"""Structure- and CJK-aware chunking: headings open sections, clauses open segments, sentences fill chunks.

A document is read line by line. A heading (Markdown `#`, or a short unpunctuated line numbered like
`第二章`, `第三节`, `一、`, `（一）`, `1.2`) closes the section before it and updates the heading path. A
numbered clause (`第五条`, `1.`, `（2）`, `1.2.3 text。`) starts a new segment inside the section, so a
chunk boundary falls between rules rather than inside one. Segments are packed into chunks of at most
`max_chars`; a segment longer than that is cut at sentence ends (。！？；.!? or a line break) and the
next piece repeats the previous piece's last sentences (`overlap_chars`). Every chunk is an exact span
`text[start:end]` of the cleaned document, so a citation can point into it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass

from wattlm.kb.config import KbConfig

_CN_NUM = "一二三四五六七八九十百零〇两"
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
# Short numbered lines without end punctuation are headings; the rank orders the numbering schemes.
_HEADING_PATTERNS: list[tuple[re.Pattern[str], int]] = [
    (re.compile(rf"^第[{_CN_NUM}\d]+[编部]"), 1),
    (re.compile(rf"^第[{_CN_NUM}\d]+章"), 2),
    (re.compile(rf"^第[{_CN_NUM}\d]+节"), 3),
    (re.compile(rf"^[{_CN_NUM}]+[、.．]"), 4),
    (re.compile(rf"^[（(][{_CN_NUM}]+[）)]"), 5),
    # `1.2 范围` or `1 总则` (GB-standard style); `1. 拉开断路器` is a list item, not a heading.
    (re.compile(r"^(\d+(\.\d+)+\.?\s*|\d+\s+)\S"), 6),  # rank refined by depth in _heading_rank
]
# A clause opens a new segment (and is content, not a heading).
_CLAUSE = re.compile(rf"^(第[{_CN_NUM}\d]+条|[{_CN_NUM}]+[、.．]|[（(][{_CN_NUM}\d]+[）)]|\d+(\.\d+)*[.、．)）]?\s*\S|[-*•]\s)")
_SENTENCE_END = re.compile(r"[。！？；!?;]+[”’」』）)]*|(?<![\d.])\.(?=\s|$)|\n")
_END_PUNCT = tuple("。！？；.!?;：:，,")
_HEADING_MAX_CHARS = 40


@dataclass
class Chunk:
    """One retrievable span of a document; `start`/`end` index the cleaned document text."""

    id: str
    doc_id: str
    source: str
    title: str
    heading: str  # heading path, " > " between levels
    start: int
    end: int
    text: str
    effective: str | None = None
    superseded_by: str | None = None

    def to_record(self) -> dict[str, object]:
        return asdict(self)

    def embed_text(self) -> str:
        """What the indexes see: title and heading give a bare clause its context."""
        context = " / ".join(part for part in (self.title, self.heading) if part)
        return f"{context}\n{self.text}" if context else self.text


@dataclass
class _Line:
    start: int
    end: int
    text: str  # stripped


def _lines(text: str) -> list[_Line]:
    lines, pos = [], 0
    for raw in text.split("\n"):
        stripped = raw.strip()
        if stripped:
            lead = len(raw) - len(raw.lstrip())
            lines.append(_Line(pos + lead, pos + lead + len(stripped), stripped))
        pos += len(raw) + 1
    return lines


def _heading_rank(line: str) -> tuple[int, str] | None:
    """(rank, heading text) if the line is a heading; Markdown levels rank 1..6 ahead of numbered ones."""
    match = _MD_HEADING.match(line)
    if match:
        return len(match.group(1)), match.group(2).strip()
    if len(line) > _HEADING_MAX_CHARS or line.endswith(_END_PUNCT) or _SENTENCE_END.search(line):
        return None
    for pattern, rank in _HEADING_PATTERNS:
        if pattern.match(line):
            if rank == 6:
                depth = line.split()[0].rstrip(".").count(".")
                rank += depth
            return 6 + rank, line
    return None


def document_title(text: str, fallback: str) -> str:
    """The first Markdown heading, else a short unpunctuated first line, else `fallback` (the file name)."""
    lines = _lines(text)
    for line in lines[:5]:
        match = _MD_HEADING.match(line.text)
        if match and len(match.group(1)) == 1:
            return match.group(2).strip()
    if lines and len(lines[0].text) <= 60 and not lines[0].text.endswith(_END_PUNCT):
        return lines[0].text.lstrip("# ").strip()
    return fallback


def _sections(text: str, title: str) -> list[tuple[str, list[list[_Line]]]]:
    """(heading path, segments) in document order; a segment is the lines of one clause or paragraph.

    A heading with nothing under it (a checklist of short numbered lines, a trailing `附件`) is not
    lost: it becomes a segment of its parent section, so every line of the document is in a chunk.
    """
    stack: list[tuple[int, str]] = []
    sections: list[tuple[str, list[list[_Line]]]] = []
    segments: list[list[_Line]] = []
    heading = ""
    empty_heading: tuple[_Line, int] | None = None  # the last heading, while nothing follows it

    def keep_empty_heading() -> None:
        line, _ = empty_heading
        parent = " > ".join(name for _, name in stack[:-1])
        if sections and sections[-1][0] == parent:
            sections[-1][1].append([line])
        else:
            sections.append((parent, [[line]]))

    for number, line in enumerate(_lines(text)):
        if number == 0 and line.text.lstrip("# ").strip() == title:
            continue  # the title line: every chunk carries the title already
        found = _heading_rank(line.text)
        if found is not None:
            if segments:
                sections.append((heading, segments))
                segments = []
            rank, name = found
            if empty_heading is not None and rank <= empty_heading[1]:
                keep_empty_heading()
            while stack and stack[-1][0] >= rank:
                stack.pop()
            stack.append((rank, name))
            heading = " > ".join(name for _, name in stack)
            empty_heading = (line, rank)
            continue
        empty_heading = None
        if not segments or _CLAUSE.match(line.text):
            segments.append([line])
        else:
            segments[-1].append(line)
    if segments:
        sections.append((heading, segments))
    elif empty_heading is not None:
        keep_empty_heading()
    return sections


def _sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence spans inside text[start:end], each ending after its punctuation, whitespace trimmed."""
    spans, pos = [], start
    for match in _SENTENCE_END.finditer(text, start, end):
        spans.append((pos, match.end()))
        pos = match.end()
    if pos < end:
        spans.append((pos, end))
    trimmed = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            trimmed.append((a, b))
    return trimmed


def _hard_cut(start: int, end: int, size: int) -> list[tuple[int, int]]:
    return [(a, min(a + size, end)) for a in range(start, end, size)]


def _pack(text: str, segments: list[tuple[int, int]], config: KbConfig) -> list[tuple[int, int]]:
    """Spans of at most `max_chars`: whole segments together when they fit, long ones cut at sentences."""
    pieces: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    for seg_start, seg_end in segments:
        if current and seg_end - current[0] <= config.max_chars:
            current = (current[0], seg_end)
            continue
        if current:
            pieces.append(current)
            current = None
        if seg_end - seg_start <= config.max_chars:
            current = (seg_start, seg_end)
            continue
        sentences: list[tuple[int, int]] = []
        for a, b in _sentence_spans(text, seg_start, seg_end):
            sentences += _hard_cut(a, b, config.max_chars) if b - a > config.max_chars else [(a, b)]
        window: list[tuple[int, int]] = []
        for sentence in sentences:
            if window and sentence[1] - window[0][0] > config.max_chars:
                pieces.append((window[0][0], window[-1][1]))
                # Overlap: carry the last sentences that fit, so a rule split here is whole once.
                carried: list[tuple[int, int]] = []
                for prev in reversed(window):
                    if window[-1][1] - prev[0] > config.overlap_chars or sentence[1] - prev[0] > config.max_chars:
                        break
                    carried.insert(0, prev)
                window = carried
            window.append(sentence)
        if window:
            current = (window[0][0], window[-1][1])
    if current:
        pieces.append(current)
    return pieces


def chunk_document(text: str, source: str, doc_id: str, title: str, config: KbConfig,
                   validity: dict[str, str | None] | None = None) -> list[Chunk]:
    """The chunks of one cleaned document, in order. An empty list means nothing retrievable in it."""
    validity = validity or {}
    kept: list[tuple[str, int, int]] = []
    for heading, segments in _sections(text, title):
        segment_spans = [(seg[0].start, seg[-1].end) for seg in segments]
        spans = [(heading, start, end) for start, end in _pack(text, segment_spans, config)]
        # A crumb left over from cutting a long section carries nothing to retrieve; a section that is
        # only a short line ("附件", "略。") keeps it, so no heading and no line is lost.
        kept += [span for span in spans if span[2] - span[1] >= config.min_chars] or spans
    chunks = []
    for heading, start, end in kept:
        body = text[start:end]
        chunk_id = hashlib.sha1(f"{source}\0{start}\0{end}\0{body}".encode()).hexdigest()[:16]
        chunks.append(Chunk(chunk_id, doc_id, source, title, heading, start, end, body,
                            validity.get("effective"), validity.get("superseded_by")))
    return chunks
