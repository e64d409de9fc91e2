"""Reading text back out of dataset artifacts and plain files, for training and evaluation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from wattlm.errors import NotFound, WattError
from wattlm.registry import Artifact


def dataset_texts(dataset: Artifact, split: str) -> Iterator[str]:
    """Texts of one split (`train` / `heldout`) of a corpus artifact, or every text of a text set."""
    if dataset.format == "text":
        yield from read_texts(dataset.path)
        return
    from wattlm.data.textset import read_split_texts

    # JSONL or Parquet shards, whichever the data stage wrote (one reader, owned by the data stage).
    yield from read_split_texts(dataset.path / split)


def read_texts(path: Path) -> Iterator[str]:
    """Documents from a .txt/.md file (one document), a .jsonl file (field `text`), or a folder of them."""
    from wattlm.data.textset import iter_texts

    yield from iter_texts(Path(path))


def dataset_records(dataset: Artifact, split: str) -> Iterator[dict]:
    """JSON records of one split of a JSONL dataset, or of every .jsonl file of a text set (sft data)."""
    if dataset.format == "text":
        files = [dataset.path] if dataset.path.is_file() else sorted(dataset.path.rglob("*.jsonl"))
    else:
        files = sorted((dataset.path / split).glob("*.jsonl"))
    if not files:
        raise NotFound(f"dataset {dataset.name} ({dataset.id}) has no JSONL records for split {split!r}")
    for file in files:
        yield from jsonl_records(file)


def jsonl_records(file: Path) -> Iterator[dict]:
    """The JSON objects of one JSONL file; blank lines skipped, anything else is an error naming the line."""
    with open(file, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise WattError(f"{file}:{line_no}: not valid JSON") from None
            if not isinstance(record, dict):
                raise WattError(f"{file}:{line_no}: expected a JSON object")
            yield record
