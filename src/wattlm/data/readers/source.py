"""The first step: find input files, decode them, and hand each to the reader for its extension.

Everything that can go wrong with a file (unknown type, binary, bad encoding, bad record) is counted
here and reported with the file's relative path; nothing raises, so one bad file cannot stop a corpus.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from wattlm.data.document import BadRecord, Document, doc_id
from wattlm.data.readers import ReadError, make_readers
from wattlm.shared.encoding import UndecodableError, decode_bytes
from wattlm.data.report import FileError
from wattlm.errors import NotFound
from wattlm.shared.records import visible_files


@dataclass(frozen=True)
class InputFile:
    path: Path
    source: str  # relative to its input root, POSIX separators: the basis of document ids
    # A piece of a large file (split_input.py): bytes [start, end), its first line's number. end -1: whole.
    start: int = 0
    end: int = -1
    first_line: int = 1

    @property
    def is_piece(self) -> bool:
        return self.end >= 0


def read_piece(file: InputFile) -> bytes:
    """The file's bytes, or the piece's byte range."""
    if not file.is_piece:
        return file.path.read_bytes()
    with open(file.path, "rb") as handle:
        handle.seek(file.start)
        return handle.read(file.end - file.start)


def list_input_files(inputs: Sequence[Path], exclude: Path | None = None) -> list[InputFile]:
    """All files under `inputs`, sorted per input so every run sees the same order.

    Hidden files and folders (.git, .DS_Store) are not documents and are skipped silently. `exclude`
    (the output folder) is skipped so a corpus written inside its own input is never read back.
    """
    for root in inputs:
        if not root.exists():
            raise NotFound(f"input not found: {root}")
    excluded = exclude.resolve() if exclude is not None else None
    files: list[InputFile] = []
    seen_paths: set[Path] = set()
    seen_sources: set[str] = set()
    for root in inputs:
        base = root.parent if root.is_file() else root
        for path in visible_files(root):
            resolved = path.resolve()
            if resolved in seen_paths or (excluded is not None and resolved.is_relative_to(excluded)):
                continue
            seen_paths.add(resolved)
            source = path.relative_to(base).as_posix()
            if source in seen_sources:
                # Two inputs hold the same relative path: prefix the root's name to keep ids distinct.
                source = f"{base.resolve().name}/{source}"
            seen_sources.add(source)
            files.append(InputFile(path, source))
    return files


class FileSource:
    """Yields the documents of a list of files and keeps the per-file counts for the report."""

    name = "read"

    def __init__(self, files: Sequence[InputFile], text_field: str = "text") -> None:
        self.files = files
        self.readers = make_readers(text_field)
        self.files_seen = 0
        self.files_failed = 0
        self.docs_out = 0
        self.chars_out = 0
        self.skipped: Counter[str] = Counter()
        self.encodings: Counter[str] = Counter()
        self.errors: list[FileError] = []

    def run(self, on_file_done: Callable[[], None] | None = None) -> Iterator[Document]:
        for file in self.files:
            self.files_seen += file.start == 0  # a file cut into pieces is one file
            yield from self._read_file(file)
            if on_file_done is not None:
                on_file_done()

    def _read_file(self, file: InputFile) -> Iterator[Document]:
        reader = self.readers.get(file.path.suffix.lower())
        if reader is None:
            self.skipped["unsupported_type"] += 1
            return
        try:
            data = read_piece(file)
            if reader.binary:
                if not data:
                    raise UndecodableError("empty file")
                items, encoding = reader.read_bytes(data, file.source), "binary"
            else:
                text, encoding = decode_bytes(data)
                items = self._read_text(reader, text, file)
        except (UndecodableError, OSError) as err:
            self._fail(file, str(err) if isinstance(err, UndecodableError) else err.strerror or str(err))
            return
        if not reader.binary and file.start == 0:  # `encodings` counts text files (not pieces) only
            self.encodings[encoding] += 1
        try:
            for item in items:
                if isinstance(item, BadRecord):
                    self.errors.append(FileError(file=file.source, error=item.message))
                    continue
                self.docs_out += 1
                self.chars_out += len(item.text)
                item.meta["encoding"] = encoding  # "binary" for PDF / DOCX
                yield item
        except ReadError as err:
            self._fail(file, str(err))

    @staticmethod
    def _read_text(reader, text: str, file: InputFile):
        if not file.is_piece:
            return reader.read(text, file.source)
        if file.path.suffix.lower() == ".jsonl":
            return reader.read(text, file.source, first_line=file.first_line)
        source = f"{file.source}@{file.start}"  # a text piece is a document of its own
        return [Document(id=doc_id(source), text=text, source=source, meta={"format": "text"})]

    def stats_state(self) -> dict[str, object]:
        """The counts as JSON, for a shard's completion marker (see Step.stats_state)."""
        return {"files_seen": self.files_seen, "files_failed": self.files_failed, "docs_out": self.docs_out,
                "chars_out": self.chars_out, "skipped": dict(self.skipped), "encodings": dict(self.encodings),
                "errors": [error.model_dump() for error in self.errors]}

    def merge_stats(self, state: dict) -> None:
        for key in ("files_seen", "files_failed", "docs_out", "chars_out"):
            setattr(self, key, getattr(self, key) + state[key])
        self.skipped.update(state["skipped"])
        self.encodings.update(state["encodings"])
        self.errors += [FileError(**error) for error in state["errors"]]

    def _fail(self, file: InputFile, message: str) -> None:
        self.files_failed += file.start == 0
        where = f" (bytes {file.start}-{file.end})" if file.is_piece else ""
        self.errors.append(FileError(file=file.source, error=message + where))
