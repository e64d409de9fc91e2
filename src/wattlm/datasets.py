"""Reading a registered dataset back: the records or texts of a corpus split, or of a text set.

A corpus (`watt data build`, `watt synth`) keeps each split as shard-*.jsonl or shard-*.parquet files
in `train/` and `heldout/`; a text set is a user's own files registered by reference (.txt, .md,
.jsonl, .parquet, or a folder of them). Training, evaluation, synthesis and export all read through
here, so a Parquet corpus works wherever a JSONL one does.

Unlike `build_corpus`, which counts problems and carries on, this raises: an evaluation or training
run on silently partial data would report a number nobody can trust.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from wattlm.errors import NotFound, WattError
from wattlm.registry import Artifact
from wattlm.shared.encoding import UndecodableError, decode_bytes
from wattlm.shared.records import parquet_records, parse_jsonl, read_records, visible_files
from wattlm.shared.text import strip_front_matter

SHARDS = "shard-*"  # the file names of a split's shards (the data stage's writer and synth's)
TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".jsonl", ".parquet")


def dataset_texts(dataset: Artifact, split: str) -> Iterator[str]:
    """Texts of one split (`train` / `heldout`) of a corpus artifact, or every text of a text set."""
    if dataset.format == "text":
        yield from read_texts(dataset.path)
        return
    yield from read_split_texts(dataset.path / split)


def dataset_records(dataset: Artifact, split: str) -> Iterator[dict]:
    """Records of one split of a corpus (JSONL or Parquet shards), or of every .jsonl / .parquet file of a
    text set (sft data)."""
    path = dataset.path if dataset.format == "text" else dataset.path / split
    try:
        yield from read_records(path, pattern="*" if dataset.format == "text" else SHARDS)
    except NotFound:
        raise NotFound(f"dataset {dataset.name} ({dataset.id}) has no JSONL or Parquet records for split {split!r}") from None


def read_split_texts(folder: Path) -> Iterator[str]:
    """Texts of one split folder (`train/` or `heldout/`): its shards in name order. NotFound if none."""
    for record in read_records(folder, fields=("text",), pattern=SHARDS):
        if record["text"] is not None:
            yield record["text"]


def read_texts(path: Path) -> Iterator[str]:
    """The non-blank texts of `path`: a .txt/.md file (one document), a .jsonl (field `text`) or .parquet
    file (column `text`), or a folder searched recursively (other file types in it, e.g. report.json
    beside the shards, are ignored). Missing path -> NotFound; a bad file or JSONL line, or a folder with
    no texts -> WattError naming it."""
    path = Path(path)
    if not path.exists():
        raise NotFound(f"input not found: {path}")
    if path.is_file() and path.suffix.lower() not in TEXT_SUFFIXES:
        raise WattError(f"unsupported text file: {path} (expected .txt, .md, .jsonl or .parquet)")
    found = False
    for file in visible_files(path):
        for text in _file_texts(file):
            if text.strip():
                found = True
                yield text
    if not found:
        raise WattError(f"no texts found in {path} (looked for .txt, .md, .jsonl and .parquet files)")


def _file_texts(file: Path) -> Iterator[str]:
    suffix = file.suffix.lower()
    if suffix == ".parquet":
        yield from (record["text"] for record in parquet_records(file, ("text",)) if record["text"] is not None)
        return
    if suffix not in TEXT_SUFFIXES:
        return
    data = file.read_bytes()
    if not data.strip():
        return  # an empty file holds no text; not worth failing an evaluation over
    try:
        text, _ = decode_bytes(data)  # a text set may be GBK or Big5, like any raw document
    except UndecodableError as err:
        raise WattError(f"cannot read {file}: {err}") from None
    if suffix != ".jsonl":
        yield strip_front_matter(text) if suffix in (".md", ".markdown") else text
        return
    for line in parse_jsonl(text):
        if line.error is not None:
            raise WattError(f"{file}: line {line.number}: {line.error}")
        value = line.value.get("text") if isinstance(line.value, dict) else None
        if not isinstance(value, str):
            raise WattError(f"{file}: line {line.number}: no string field 'text'")
        yield value
