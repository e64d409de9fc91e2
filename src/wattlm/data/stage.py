"""The data stage's registry entry: raw documents -> a registered corpus, found again by content.

`build_dataset` is what `watt data build` and `watt run` both call; `text_dataset` registers a folder or
file of plain texts by reference (replay text, a general set, a folder given to `watt train --data`).
Both key by file bytes and settings, never by where the files live.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from wattlm.cache import files_fingerprint, files_key, fingerprint, without_paths
from wattlm.data.config import DataConfig
from wattlm.errors import NotFound
from wattlm.registry import Artifact, Registry

# The report numbers kept on the artifact (the whole report is report.json in its folder).
CORPUS_METRICS = ("docs_in", "docs_kept", "docs_train", "docs_heldout", "chars_in", "chars_kept", "files_failed")


def corpus_key(inputs: Sequence[Path], config: DataConfig) -> str:
    """Input bytes + the settings that change the output. Workers and executor change speed, not output
    (the executors are deterministic): not in the key; files the settings name (quality model, eval sets,
    perplexity GGUF) are, by content and not by path."""
    settings = without_paths(config.cache_settings(), config.referenced_files())
    return fingerprint("data", files_fingerprint(inputs), settings)


def build_dataset(registry: Registry, inputs: Sequence[Path], config: DataConfig, name: str,
                  progress: bool = True, recipe: dict | None = None) -> tuple[Artifact, bool]:
    """Clean `inputs` into a registered corpus (or find the one built from the same bytes and settings).

    `config`'s file fields must already be absolute (`with_paths_under` the recipe's folder or the
    working directory). `recipe` is the section recorded on the artifact (default: `config` + inputs).
    Returns (dataset, reused)."""
    from wattlm.data.pipeline import build_corpus

    inputs = [Path(p).resolve() for p in inputs]
    for path in inputs:
        if not path.exists():
            raise NotFound(f"data input not found: {path}")
    section = recipe or {"data": {**config.model_dump(mode="json"), "inputs": [str(p) for p in inputs]}}

    key = corpus_key(inputs, config)

    def produce(staged: Path) -> dict:
        # Built in a work folder named by the key, whose shard markers let a rerun after a crash resume;
        # moved into the staging folder once complete.
        work = registry.home / "runs" / key
        report = build_corpus(inputs, work, config, progress=progress)
        for item in work.iterdir():
            os.replace(item, staged / item.name)
        shutil.rmtree(work, ignore_errors=True)
        summary = report.to_dict() if hasattr(report, "to_dict") else report.model_dump()
        metrics = {k: summary[k] for k in CORPUS_METRICS if k in summary}
        metrics["dropped"] = summary.get("dropped", {})
        return dict(kind="dataset", name=name, format=config.output_format, recipe=section, metrics=metrics,
                    meta={"inputs": [str(p) for p in inputs]})

    return registry.find_or_produce(key, produce)


def text_dataset(registry: Registry, path: Path, name: str) -> Artifact:
    """A folder/file of plain texts registered by reference (e.g. the general set for forgetting).

    Keyed by the files' bytes only: the same texts at another path are the same dataset (the first
    registration is reused while its files exist)."""
    path = Path(path)
    if not path.exists():
        raise NotFound(f"text set not found: {path}")
    key = files_key("textset", [path])
    with registry.key_lock(key):
        return registry.find(key) or registry.register(
            "dataset", name, path=path.resolve(), format="text", meta={"source": str(path.resolve())}, cache_key=key
        )
