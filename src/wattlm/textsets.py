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
    folder = dataset.path / split
    shards = sorted(folder.glob("*.jsonl"))
    if not shards:
        raise NotFound(f"dataset {dataset.name} ({dataset.id}) has no {split!r} split at {folder}")
    for shard in shards:
        with open(shard, encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield json.loads(line)["text"]
                    except (json.JSONDecodeError, KeyError):
                        raise WattError(f"{shard}:{line_no}: expected a JSON object with a 'text' field") from None


def read_texts(path: Path) -> Iterator[str]:
    """Documents from a .txt/.md file (one document), a .jsonl file (field `text`), or a folder of them."""
    from wattlm.data.textset import iter_texts

    yield from iter_texts(Path(path))
