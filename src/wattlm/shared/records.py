"""Records on disk: the one JSONL / Parquet record reader and the one atomic file writer.

Reading: a record file is a .jsonl file (one JSON object per line) or a .parquet file; a folder of them
(shards) is read file by file in name order. A bad line raises a `WattError` naming the file and line,
because a stage reading its own or a registered dataset must not go on with a silently partial one.

Writing: every file is written to a temporary name in its final folder, synced and then renamed
(os.replace is atomic on POSIX and Windows), so a crash never leaves a half-written file that a later
run would read as if it were complete.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from wattlm.errors import NotFound, WattError

RECORD_SUFFIXES = (".jsonl", ".parquet")


@dataclass(frozen=True)
class JsonLine:
    """One non-blank line of JSONL: its 1-based number and the parsed value, or why it is not JSON."""

    number: int
    value: object = None
    error: str | None = None


def parse_jsonl(text: str | Iterable[str], first_line: int = 1) -> Iterator[JsonLine]:
    """Parse JSONL (a whole text, or lines); blank lines are skipped. Never raises for a bad line: the
    caller decides whether it stops (a dataset) or counts it and goes on (raw input in the data stage)."""
    # Split on '\n' only: str.splitlines() also breaks on U+2028 and U+0085, which JSON leaves unescaped.
    lines = text.split("\n") if isinstance(text, str) else text
    for number, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        try:
            yield JsonLine(number, json.loads(line))
        except json.JSONDecodeError as err:
            yield JsonLine(number, error=f"invalid JSON ({err.msg})")


def jsonl_records(file: Path, fields: Sequence[str] = ()) -> Iterator[dict]:
    """The JSON objects of one JSONL file. Invalid JSON, a line that is no object, or one without every
    name in `fields` raises a WattError naming the file and the line."""
    with open(file, encoding="utf-8") as handle:
        for line in parse_jsonl(handle):
            if line.error is not None:
                raise WattError(f"{file}: line {line.number}: {line.error}")
            if not isinstance(line.value, dict):
                raise WattError(f"{file}: line {line.number}: expected a JSON object")
            missing = [name for name in fields if name not in line.value]
            if missing:
                raise WattError(f"{file}: line {line.number}: no field {', '.join(map(repr, missing))}")
            yield line.value


def parquet_records(file: Path, fields: Sequence[str] = ()) -> Iterator[dict]:
    """The rows of one Parquet file as dicts (only the `fields` columns when given, each required)."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(file)
        missing = [name for name in fields if name not in parquet.schema_arrow.names]
        if missing:
            raise WattError(f"{file}: no column {', '.join(map(repr, missing))}")
        for batch in parquet.iter_batches(columns=list(fields) or None):
            yield from batch.to_pylist()
    except WattError:
        raise
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise WattError(f"cannot read {file}: {err}") from None


def visible_files(root: Path) -> list[Path]:
    """Every file under `root` (or `root` itself), sorted by relative path. Hidden files and folders
    (.git, .DS_Store, a writer's .tmp files) are skipped; symlinked folders are not followed (no cycles)."""
    if root.is_file():
        return [root]
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        found.extend(Path(dirpath, name) for name in filenames if not name.startswith("."))
    return sorted(found, key=lambda path: path.relative_to(root).as_posix())


def record_files(path: Path, pattern: str = "*", allow_empty: bool = False) -> list[Path]:
    """`path` itself if it is a file, else the .jsonl / .parquet files under it whose name matches
    `pattern`, in name order. Raises NotFound for a missing path, and for a folder with no such file
    unless `allow_empty` (an empty split is a valid split)."""
    path = Path(path)
    if not path.exists():
        raise NotFound(f"not found: {path}")
    if path.is_file():
        return [path]
    files = [file for file in visible_files(path) if file.suffix in RECORD_SUFFIXES and file.match(pattern)]
    if not files and not allow_empty:
        raise NotFound(f"no record files ({pattern}.jsonl or {pattern}.parquet) in {path}")
    return files


def read_records(path: Path, fields: Sequence[str] = (), pattern: str = "*", allow_empty: bool = False) -> Iterator[dict]:
    """Records of a .jsonl or .parquet file, or of every such file under a folder (see `record_files`);
    each must hold every name in `fields` (for Parquet, only those columns are read)."""
    for file in record_files(path, pattern, allow_empty):
        if file.suffix == ".parquet":
            yield from parquet_records(file, fields)
        else:
            yield from jsonl_records(file, fields)


@contextmanager
def atomic_path(path: Path) -> Iterator[str]:
    """A temporary file name beside `path` for a library that writes by name (pyarrow, joblib); on success
    it is synced and renamed onto `path`, on any error removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp_name
        with open(tmp_name, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` (UTF-8, '\\n' line ends) to `path` through a synced temporary file and a rename."""
    with atomic_path(path) as tmp_name, open(tmp_name, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def atomic_write_jsonl(path: Path, records: Iterable[dict]) -> None:
    """One JSON object per line (non-ASCII kept as written), atomically."""
    atomic_write_text(path, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
