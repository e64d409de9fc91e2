"""The first step: find input files, decode them, and hand each to the reader for its extension.

Everything that can go wrong with a file (unknown type, binary, bad encoding, bad record) is counted
here and reported with the file's relative path; nothing raises, so one bad file cannot stop a corpus.
Input folders are untrusted: a FIFO or device, a symlink that leads out of the folder, a file over
`ReadLimits` or one whose parser runs past the time limit is refused with a reason (limits.py).
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wattlm.data.document import BadRecord, Document, doc_id
from wattlm.data.readers import ReadError, make_readers
from wattlm.data.readers.limits import FileRefused, FileTimeout, ReadLimits, time_limit
from wattlm.data.report import FileError
from wattlm.errors import NotFound
from wattlm.shared.encoding import UndecodableError, decode_bytes
from wattlm.shared.records import visible_files


@dataclass(frozen=True)
class InputFile:
    path: Path
    source: str  # relative to its input root, POSIX separators: the basis of document ids
    # A piece of a large file (split_input.py): bytes [start, end), its first line's number. end -1: whole.
    start: int = 0
    end: int = -1
    first_line: int = 1
    # "reason: message" when the listing refused the file (not a regular file, a symlink out of the
    # input folder): it is reported, never opened.
    refused: str = ""
    # `path.resolve()` when the listing worked it out (from its folder's, resolved once per folder):
    # a resolve costs an lstat per path component, and the listing, the fingerprint and the shard tasks
    # each needed one per file.
    resolved: str = field(default="", compare=False)

    @property
    def is_piece(self) -> bool:
        return self.end >= 0

    def real_path(self) -> Path:
        return Path(self.resolved) if self.resolved else self.path.resolve()

    def task_fields(self) -> tuple[str, str, int, int, int, str]:
        """What a shard task carries (absolute path: workers may not share our working directory). A
        refused symlink keeps its own path: resolving it would name the file it must not read."""
        path = self.path.absolute() if self.refused else self.real_path()
        return (str(path), self.source, self.start, self.end, self.first_line, self.refused)

    @classmethod
    def from_task_fields(cls, fields: Sequence) -> InputFile:
        path, source, start, end, first_line, refused = fields
        return cls(Path(path), source, start, end, first_line, refused)


def read_piece(file: InputFile, max_bytes: int | None = None) -> bytes:
    """The file's bytes, or the piece's byte range; at most `max_bytes` (FileRefused beyond).

    O_NONBLOCK and the fstat on the open descriptor: a FIFO swapped in after the listing is refused
    instead of blocking the worker forever, and the size checked is that of the file actually read."""
    descriptor = os.open(file.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with open(descriptor, "rb") as handle:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused("not_regular_file", "not a regular file (FIFO, device or socket)")
        size = (file.end - file.start) if file.is_piece else info.st_size
        if max_bytes is not None and size > max_bytes:
            raise FileRefused("too_large", f"{size} bytes (limit max_file_bytes={max_bytes})")
        handle.seek(file.start)
        if file.is_piece:
            data = handle.read(size)
        else:
            # The size seen, plus one byte to notice growth, not `max_bytes + 1`: BufferedReader.read(n)
            # allocates n bytes first, and a 256 MiB allocation per small file cost more than the read.
            data = handle.read(size + 1)
            if len(data) > size:  # it grew since the fstat: the rest, up to the limit
                rest = handle.read(max_bytes + 1 - len(data) if max_bytes is not None else -1)
                data += rest
    if max_bytes is not None and len(data) > max_bytes:  # it grew since the fstat
        raise FileRefused("too_large", f"more than {max_bytes} bytes (limit max_file_bytes)")
    return data


def refusal(path: Path, root: Path) -> str:
    """Why a file found under the input folder `root` must not be read ("" when it may): a symlink
    that resolves outside `root` (a planted link to /etc/passwd or a key), or anything not a regular
    file (a FIFO would block the reader forever; a device never ends)."""
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            if not path.resolve().is_relative_to(root.resolve()):
                return "symlink_outside_input: symlink to a file outside the input folder"
            info = os.stat(path)
    except (OSError, RuntimeError):  # a dangling link or a loop
        return "broken_symlink: symlink to nothing readable"
    if not stat.S_ISREG(info.st_mode):
        return "not_regular_file: not a regular file (FIFO, device or socket)"
    return ""


def list_input_files(inputs: Sequence[Path], exclude: Path | None = None) -> list[InputFile]:
    """All files under `inputs`, sorted per input so every run sees the same order.

    Hidden files and folders (.git, .DS_Store) are not documents and are skipped silently. `exclude`
    (the output folder) is skipped so a corpus written inside its own input is never read back. Files
    found in a folder that must not be read (see `refusal`) are listed with their reason, so the report
    names them; a file given by name is the caller's choice and is read.
    """
    for root in inputs:
        if not root.exists():
            raise NotFound(f"input not found: {root}")
    excluded = exclude.resolve() if exclude is not None else None
    files: list[InputFile] = []
    seen_paths: set[Path] = set()
    seen_sources: set[str] = set()
    folders: dict[Path, Path] = {}  # folder -> its resolved path
    for root in inputs:
        base = root.parent if root.is_file() else root
        for path in visible_files(root):
            refused = refusal(path, root) if base is root else ""
            resolved = path.absolute() if refused else _resolve(path, folders)
            if resolved in seen_paths or (excluded is not None and resolved.is_relative_to(excluded)):
                continue
            seen_paths.add(resolved)
            source = path.relative_to(base).as_posix()
            if source in seen_sources:
                # Two inputs hold the same relative path: prefix the root's name to keep ids distinct.
                source = f"{base.resolve().name}/{source}"
            seen_sources.add(source)
            files.append(InputFile(path, source, refused=refused, resolved="" if refused else str(resolved)))
    return files


def _resolve(path: Path, folders: dict[Path, Path]) -> Path:
    """`path.resolve()`: a file that is no symlink is its resolved folder (worked out once) plus its name."""
    try:
        is_link = stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        is_link = True  # let resolve() deal with it
    if is_link:
        return path.resolve()
    folder = folders.get(path.parent)
    if folder is None:
        folder = folders[path.parent] = path.parent.resolve()
    return folder / path.name


class FileSource:
    """Yields the documents of a list of files and keeps the per-file counts for the report."""

    name = "read"

    def __init__(self, files: Sequence[InputFile], text_field: str = "text", limits: ReadLimits | None = None) -> None:
        self.files = files
        self.limits = limits or ReadLimits()
        self.readers = make_readers(text_field, self.limits)
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
        if file.refused:
            reason, message = file.refused.split(": ", 1)
            self._fail(file, message, reason)
            return
        reader = self.readers.get(file.path.suffix.lower())
        if reader is None:
            self.skipped["unsupported_type"] += 1
            return
        # The whole file is read and parsed under the time limit (its items collected: they are in
        # memory anyway, bounded by max_file_bytes), so the limit never counts the later steps' time.
        items: list[Document | BadRecord] = []
        encoding, failure = "", ""
        try:
            with time_limit(self.limits.file_timeout_s):
                data = read_piece(file, self.limits.max_file_bytes)
                if reader.binary:
                    if not data:
                        raise UndecodableError("empty file")
                    parsed, encoding = reader.read_bytes(data, file.source), "binary"
                else:
                    text, encoding = decode_bytes(data)
                    parsed = self._read_text(reader, text, file)
                try:
                    for item in parsed:
                        items.append(item)
                except FileRefused:
                    raise
                except ReadError as err:  # a damaged file: what was read before the damage is kept
                    failure = str(err)
        except FileRefused as err:
            self._fail(file, str(err), err.reason)
            return
        except FileTimeout:
            self._fail(file, f"reading took over {self.limits.file_timeout_s:g} s (limit file_timeout_s)", "timeout")
            return
        except (UndecodableError, ReadError, OSError) as err:
            message = err.strerror or str(err) if isinstance(err, OSError) else str(err)
            self._fail(file, message)
            return
        if not reader.binary and file.start == 0:  # `encodings` counts text files (not pieces) only
            self.encodings[encoding] += 1
        for item in items:
            if isinstance(item, BadRecord):
                self.errors.append(FileError(file=file.source, error=item.message))
                continue
            self.docs_out += 1
            self.chars_out += len(item.text)
            item.meta["encoding"] = encoding  # "binary" for PDF / DOCX
            yield item
        if failure:
            self._fail(file, failure)

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

    def _fail(self, file: InputFile, message: str, reason: str | None = None) -> None:
        """`reason`: set when a safety check refused the file (limits.py), None for a damaged file."""
        self.files_failed += file.start == 0
        where = f" (bytes {file.start}-{file.end})" if file.is_piece else ""
        self.errors.append(FileError(file=file.source, error=message + where, reason=reason))
