"""Read document texts back: a split written by `build_corpus` (JSONL or Parquet shards), or a user's own
text files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from wattlm.data.document import BadRecord
from wattlm.data.readers.base import BaseReader
from wattlm.data.readers.encoding import UndecodableError, decode_bytes
from wattlm.data.readers.source import list_input_files
from wattlm.data.readers.text_formats import JsonlReader, MarkdownReader, TextReader
from wattlm.errors import NotFound, WattError

_READERS: dict[str, BaseReader] = {
    ".txt": TextReader(),
    ".md": MarkdownReader(),
    ".markdown": MarkdownReader(),
    ".jsonl": JsonlReader("text"),
}


def _parquet_texts(path: Path) -> Iterator[str]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        if "text" not in parquet.schema_arrow.names:
            raise WattError(f"{path}: no 'text' column")
        for batch in parquet.iter_batches(columns=["text"]):
            yield from (text for text in batch.column(0).to_pylist() if text is not None)
    except WattError:
        raise
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise WattError(f"cannot read {path}: {err}") from None


def read_split_texts(folder: Path) -> Iterator[str]:
    """Texts of one split folder written by `build_corpus` (`train/` or `heldout/`): its
    shard-*.jsonl and shard-*.parquet files in name order. Raises NotFound if there is no shard."""
    folder = Path(folder)
    shards = sorted([*folder.glob("shard-*.jsonl"), *folder.glob("shard-*.parquet")])
    if not shards:
        raise NotFound(f"no shards (shard-*.jsonl or shard-*.parquet) in {folder}")
    for shard in shards:
        if shard.suffix == ".parquet":
            yield from _parquet_texts(shard)
            continue
        with open(shard, encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)["text"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise WattError(f"{shard}:{line_no}: expected a JSON object with a 'text' field") from None


def iter_texts(path: Path) -> Iterator[str]:
    """Yield the non-blank texts of `path` (a .txt/.md/.jsonl/.parquet file, or a folder searched recursively).

    Unlike `build_corpus`, which counts problems and carries on, this raises: an evaluation run on
    silently partial data would report a number nobody can trust. Missing path -> NotFound; a bad
    file or JSONL line, or a folder with no texts -> WattError naming it. Other file types in a
    folder (e.g. report.json next to the shards) are ignored.
    """
    path = Path(path)
    files = list_input_files([path])  # raises NotFound("input not found: ...")
    if path.is_file() and path.suffix.lower() not in (*_READERS, ".parquet"):
        raise WattError(f"unsupported text file: {path} (expected .txt, .md, .jsonl or .parquet)")
    found = False
    for file in files:
        if file.path.suffix.lower() == ".parquet":
            for text in _parquet_texts(file.path):
                if text.strip():
                    found = True
                    yield text
            continue
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
        raise WattError(f"no texts found in {path} (looked for .txt, .md, .jsonl and .parquet files)")
