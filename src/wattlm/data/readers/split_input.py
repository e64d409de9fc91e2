"""Large JSONL / text files cut into byte ranges, so several shard workers share one big input.

A file above `split_bytes` becomes pieces that end on a line boundary (the cut points depend only on
the file's bytes and `split_bytes`, so a resumed run finds the same pieces). A JSONL piece keeps the
global line number of its first line: record sources (`file.jsonl#N`), and therefore document ids, are
the same as when the file is read whole. A text piece is one document, `file.txt@<byte offset>`: a
200 MB log or manual is not one training document anyway, and no step then has to hold it whole.
UTF-16 files (a BOM, newlines are two bytes) are never cut. The search for a line end stops
`max_piece_bytes` past a piece's start: the rest of such a file (a line longer than the reader would
accept) becomes one piece that the reader refuses as too large, instead of the listing reading
gigabytes of a hostile single-line file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from wattlm.data.readers.source import InputFile

SPLITTABLE = (".jsonl", ".txt")
_CHUNK = 1 << 20
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _next_line_start(handle, position: int, size: int, stop: int | None = None) -> int:
    """The offset just after the first b"\\n" at or after `position` (or `size` when there is none
    before `stop`)."""
    handle.seek(position)
    while position < min(size, stop if stop is not None else size):
        chunk = handle.read(_CHUNK)
        newline = chunk.find(b"\n")
        if newline >= 0:
            found = position + newline + 1
            return found if stop is None or found <= stop else size
        position += len(chunk)
    return size


def _count_newlines(handle, start: int, end: int) -> int:
    handle.seek(start)
    count, remaining = 0, end - start
    while remaining > 0:
        chunk = handle.read(min(_CHUNK, remaining))
        count += chunk.count(b"\n")
        remaining -= len(chunk)
    return count


def file_pieces(file: InputFile, split_bytes: int, max_piece_bytes: int | None = None) -> list[InputFile]:
    """`file` itself, or its line-aligned pieces when it is a large JSONL / text file."""
    if file.refused or file.path.suffix.lower() not in SPLITTABLE:
        return [file]
    try:
        size = file.path.stat().st_size
    except OSError:
        return [file]  # the reader reports it
    if size <= split_bytes:
        return [file]
    pieces: list[InputFile] = []
    with open(file.path, "rb") as handle:
        if handle.read(2) in _UTF16_BOMS:
            return [file]
        start, line = 0, 1
        while start < size:
            stop = start + max_piece_bytes if max_piece_bytes is not None else None
            end = _next_line_start(handle, start + split_bytes, size, stop) if start + split_bytes < size else size
            pieces.append(replace(file, start=start, end=end, first_line=line))
            if end < size:  # the last piece's lines need no counting
                line += _count_newlines(handle, start, end)
            start = end
    return pieces if len(pieces) > 1 else [file]  # one long line: nothing to share


def split_large_files(files: Sequence[InputFile], split_bytes: int,
                      max_piece_bytes: int | None = None) -> list[InputFile]:
    return [piece for file in files for piece in file_pieces(file, split_bytes, max_piece_bytes)]
