"""Read document texts back: a held-out split written by `build_corpus`, or a user's own text files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from wattlm.data.document import BadRecord
from wattlm.data.encoding import UndecodableError, decode_bytes
from wattlm.data.readers import BaseReader, JsonlReader, MarkdownReader, TextReader
from wattlm.data.source import list_input_files
from wattlm.errors import WattError

_READERS: dict[str, BaseReader] = {
    ".txt": TextReader(),
    ".md": MarkdownReader(),
    ".markdown": MarkdownReader(),
    ".jsonl": JsonlReader("text"),
}


def iter_texts(path: Path) -> Iterator[str]:
    """Yield the non-blank texts of `path` (a .txt/.md/.jsonl file, or a folder searched recursively).

    Unlike `build_corpus`, which counts problems and carries on, this raises: an evaluation run on
    silently partial data would report a number nobody can trust. Missing path -> NotFound; a bad
    file or JSONL line, or a folder with no texts -> WattError naming it. Other file types in a
    folder (e.g. report.json next to the shards) are ignored.
    """
    path = Path(path)
    files = list_input_files([path])  # raises NotFound("input not found: ...")
    if path.is_file() and path.suffix.lower() not in _READERS:
        raise WattError(f"unsupported text file: {path} (expected .txt, .md or .jsonl)")
    found = False
    for file in files:
        reader = _READERS.get(file.path.suffix.lower())
        if reader is None:
            continue
        data = file.path.read_bytes()
        if not data.strip():
            continue  # an empty file holds no text; not worth failing an evaluation over
        try:
            text, _ = decode_bytes(data)
        except UndecodableError as err:
            raise WattError(f"cannot read {file.path}: {err}") from None
        for item in reader.read(text, file.source):
            if isinstance(item, BadRecord):
                raise WattError(f"{file.path}: {item.message}")
            if item.text.strip():
                found = True
                yield item.text
    if not found:
        raise WattError(f"no texts found in {path} (looked for .txt, .md and .jsonl files)")
