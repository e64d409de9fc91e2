"""A corpus split's JSONL / Parquet shards.

Every shard goes through the shared atomic writer (a temporary name in its final folder, then a
rename), so a crash never leaves a half-written shard that a later run or `datasets.load_dataset`
would read as if it were complete.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from wattlm.data.document import Document, record_fields
from wattlm.shared.records import atomic_path, atomic_write_jsonl

_SHARD_NAME = re.compile(r"shard-\d{5}\.(jsonl|parquet)")
SHARD_FORMATS = ("jsonl", "parquet")
# Column order and types of a shard; the same in both formats.
COLUMNS = ("id", "text", "source", "lang", "chars")


def atomic_write_parquet(path: Path, records: Sequence[dict[str, object]], fields: Sequence[str] = ()) -> None:
    """Write `records` (dicts with COLUMNS) as one Parquet file, via a temporary file and a rename.

    `fields`: front matter columns (RECORD_FIELDS, strings) to add after COLUMNS."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    extra = [(name, pa.string()) for name in fields]
    schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("source", pa.string()),
                        ("lang", pa.string()), ("chars", pa.int64()), *extra])
    table = pa.Table.from_pylist(list(records), schema=schema)
    with atomic_path(path) as tmp_name:
        pq.write_table(table, tmp_name)


def write_shards(docs: Sequence[Document], folder: Path, shard_docs: int, fmt: str = "jsonl",
                 fields: tuple[str, ...] | None = None) -> list[Path]:
    """Write `docs` as folder/shard-00000.jsonl (or .parquet), ... (at most `shard_docs` documents each).

    Shards left by an earlier, larger run, or in the other format, are removed afterwards: a glob over
    the folder must see exactly this run's documents. No documents means no shards (an empty folder).
    `fields`: the front matter columns after COLUMNS (default: those any of `docs` has; the pipeline
    passes the whole corpus's, so train and held-out have the same columns).
    """
    if fmt not in SHARD_FORMATS:
        raise ValueError(f"unknown shard format {fmt!r} (expected one of {SHARD_FORMATS})")
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    fields = record_fields(docs) if fields is None else fields
    for start in range(0, len(docs), shard_docs):
        path = folder / f"shard-{len(written):05d}.{fmt}"
        records = [doc.to_record(fields) for doc in docs[start : start + shard_docs]]
        if fmt == "parquet":
            atomic_write_parquet(path, records, fields)
        else:
            atomic_write_jsonl(path, records)
        written.append(path)
    for stale in folder.iterdir():
        if _SHARD_NAME.fullmatch(stale.name) and stale not in written:
            stale.unlink()
    return written
