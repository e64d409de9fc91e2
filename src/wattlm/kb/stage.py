"""The registry-facing entry of the KB stage: build a KB from a dataset, add documents, remove a source.

Each call goes through `Registry.find_or_produce` with a content-addressed key, so an unchanged build
is a cache hit. A KB version is a new artifact; `add`/`remove` make one whose parent is the previous
version (plus, for `add`, the dataset of the new documents) and reuse the previous vectors of every
chunk whose text is unchanged.

`origins` maps the data stage's file source (a path relative to its input root) to the path as the
user gave it (`path`, shown in hits and citations) and an absolute `file` (read for front matter and
sidecar metadata): the data stage keeps only text, and a stage does not import another stage.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from wattlm.cache import fingerprint
from wattlm.errors import NotFound, WattError
from wattlm.kb.calibrate import calibrate
from wattlm.kb.chunking import Chunk, chunk_document, document_title
from wattlm.kb.config import KbConfig
from wattlm.kb.embed import MODEL, embed_passages
from wattlm.kb.index import KbIndex, load_index
from wattlm.kb.origin import document_meta, split_source
from wattlm.registry import Artifact, Registry
from wattlm.shared.records import jsonl_records

Origins = dict[str, dict[str, str]]
Progress = Callable[[str], None] | None


def dataset_documents(dataset: Artifact) -> Iterator[dict]:
    """Every record of a corpus artifact, both splits (a KB keeps the held-out documents too)."""
    for split in ("train", "heldout"):
        folder = dataset.path / split
        for file in sorted(folder.glob("shard-*.jsonl")):
            yield from jsonl_records(file)
        for file in sorted(folder.glob("shard-*.parquet")):
            import pyarrow.parquet as pq

            yield from pq.read_table(file).to_pylist()


def document_chunks(dataset: Artifact, origins: Origins, config: KbConfig) -> list[Chunk]:
    """Chunks of every document of `dataset`, in source order, with titles and validity attached."""
    chunks: list[Chunk] = []
    for record in sorted(dataset_documents(dataset), key=lambda r: str(r.get("source", ""))):
        file_source, line = split_source(str(record["source"]))
        origin = origins.get(file_source, {})
        shown = origin.get("path", file_source) + (f"#{line}" if line else "")
        meta = document_meta(Path(origin["file"]) if "file" in origin else None, line)
        title = meta.get("title") or document_title(record["text"], Path(file_source).name)
        chunks += chunk_document(record["text"], shown, str(record["id"]), title, config, meta)
    return chunks


def _silent_files(dataset: Artifact, origins: Origins) -> list[str]:
    """Input files that produced no document (empty, unreadable or unsupported): named, never hidden."""
    seen = {split_source(str(r["source"]))[0] for r in dataset_documents(dataset)}
    return sorted(origin["path"] for source, origin in origins.items() if source not in seen)


def _produce(registry: Registry, key: str, name: str, chunks: list[Chunk], config: KbConfig, parents,
             known, progress: Progress, extra_meta: dict) -> Callable[[Path], dict]:
    def produce(staged: Path) -> dict:
        work_dir = registry.home / "runs" / f"kb-{key}"

        def on_batch(done: int, total: int) -> None:
            if progress is not None:
                progress(f"embedded {done}/{total} passages")

        vectors, embedded = embed_passages([c.embed_text() for c in chunks], work_dir, config.embed_batch,
                                           known, on_batch)
        threshold = calibrate(chunks, vectors)
        sources = sorted({c.source for c in chunks})
        meta = {"name": name, "config": config.model_dump(), "embedding_model": MODEL, "threshold": threshold,
                "sources": sources, **extra_meta}
        KbIndex(chunks, vectors, meta).save(staged)
        metrics = {"chunks": len(chunks), "sources": len(sources), "embedded": embedded,
                   "embeddings_reused": len(chunks) - embedded, "threshold": threshold["value"],
                   "superseded_chunks": sum(1 for c in chunks if c.superseded_by)}
        return {"kind": "kb", "name": name, "format": "kb", "parents": parents,
                "recipe": {"kb": config.model_dump()}, "metrics": metrics, "meta": extra_meta}
    return produce


def _find_or_produce(registry: Registry, key: str, produce: Callable[[Path], dict]) -> tuple[Artifact, bool]:
    found = registry.find_or_produce(key, produce)
    # Only once the KB is registered: a crash before that must find the saved batches again.
    shutil.rmtree(registry.home / "runs" / f"kb-{key}", ignore_errors=True)
    return found


def _origins_key(origins: Origins) -> list[tuple[str, str]]:
    return sorted((source, origin["path"]) for source, origin in origins.items())


def build_kb(registry: Registry, dataset: Artifact, name: str, config: KbConfig | None = None,
             origins: Origins | None = None, sidecar_hash: str = "", progress: Progress = None,
             ) -> tuple[Artifact, bool]:
    """A KB over every document of `dataset` -> (artifact, reused)."""
    config, origins = config or KbConfig(), origins or {}
    key = fingerprint("kb", dataset.cache_key or dataset.id, config.cache_settings(), _origins_key(origins),
                      sidecar_hash, name)
    found = registry.find(key)
    if found is not None:
        return found, True
    chunks = document_chunks(dataset, origins, config)
    silent = _silent_files(dataset, origins)
    if not chunks:
        named = ", ".join(silent) or dataset.name
        raise WattError(f"knowledge base {name}: no chunks: nothing retrievable in {named} (empty, unreadable or "
                        "unsupported files)")
    extra = {"dataset": dataset.id, "files_without_chunks": silent}
    produce = _produce(registry, key, name, chunks, config, [(dataset.id, "documents")], None, progress, extra)
    return _find_or_produce(registry, key, produce)


def latest_kb(registry: Registry, name: str) -> Artifact:
    """The newest version of a KB, or a one-line error naming it."""
    try:
        return registry.get(name, kind="kb")
    except NotFound:
        raise NotFound(f"unknown knowledge base: {name!r} (see `watt kb list`)") from None


def add_to_kb(registry: Registry, previous: Artifact, dataset: Artifact, origins: Origins,
              sidecar_hash: str = "", progress: Progress = None) -> tuple[Artifact, bool]:
    """A new version of `previous` with the documents of `dataset` added (a source already in the KB is
    replaced). Nothing is registered if the new files yield no chunk, so a bad file loses nothing."""
    index = load_index(previous.path)
    config = KbConfig.of_kb(index.meta["config"])
    new_chunks = document_chunks(dataset, origins, config)
    silent = _silent_files(dataset, origins)
    if not new_chunks or silent:
        named = ", ".join(silent) or ", ".join(o["path"] for o in origins.values()) or dataset.name
        raise WattError(f"nothing added to knowledge base {previous.name}: no chunks in {named} "
                        "(empty, unreadable or unsupported); the KB is unchanged")
    replaced = {c.source.split("#")[0] for c in new_chunks}
    kept = [c for c in index.chunks if c.source.split("#")[0] not in replaced]
    key = fingerprint("kb-add", previous.cache_key or previous.id, dataset.cache_key or dataset.id,
                      _origins_key(origins), sidecar_hash)
    parents = [(previous.id, "previous"), (dataset.id, "documents")]
    extra = {"dataset": dataset.id, "added": sorted(replaced), "previous": previous.id}
    produce = _produce(registry, key, previous.name, kept + new_chunks, config, parents, index.known_vectors(),
                       progress, extra)
    return _find_or_produce(registry, key, produce)


def remove_from_kb(registry: Registry, previous: Artifact, source: str, progress: Progress = None,
                   ) -> tuple[Artifact, bool]:
    """A new version of `previous` without the chunks of `source` (a path as shown in hits; a JSONL file
    removes all its records)."""
    index = load_index(previous.path)
    kept = [c for c in index.chunks if c.source != source and c.source.split("#")[0] != source]
    if len(kept) == len(index.chunks):
        shown = ", ".join(index.meta.get("sources", [])[:5])
        raise NotFound(f"knowledge base {previous.name} has no source {source!r} (sources include: {shown})")
    if not kept:
        raise WattError(f"removing {source!r} would leave knowledge base {previous.name} empty; "
                        "build a new one instead")
    key = fingerprint("kb-remove", previous.cache_key or previous.id, source)
    extra = {"removed": source, "previous": previous.id}
    produce = _produce(registry, key, previous.name, kept, KbConfig.of_kb(index.meta["config"]),
                       [(previous.id, "previous")], index.known_vectors(), progress, extra)
    return _find_or_produce(registry, key, produce)

