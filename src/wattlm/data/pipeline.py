"""`build_corpus`: raw files -> clean, deduplicated train / held-out JSONL shards and a report.

The pipeline reads top to bottom: a file source, then a chain of steps, each a generator over
documents, then the split and the writes. Steps are chained lazily, so documents stream through
extraction, cleaning, filtering and dedup one at a time; only the kept documents are held at the end,
because the split guarantee (at least one held-out document) needs to see them all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from wattlm.data.base import PipelineStep
from wattlm.data.config import DataConfig
from wattlm.data.dedup import ExactDedup
from wattlm.data.document import Document
from wattlm.data.extract import HtmlExtractor
from wattlm.data.filters import EmptyFilter, MinCharsFilter
from wattlm.data.lang import LanguageTagger
from wattlm.data.normalize import Normalizer
from wattlm.data.report import DataReport, StepStats
from wattlm.data.source import FileSource, list_input_files
from wattlm.data.split import split_documents
from wattlm.data.writer import atomic_write_text, write_shards
from wattlm.errors import WattError

if TYPE_CHECKING:
    from rich.progress import Progress


def default_steps(config: DataConfig) -> list[PipelineStep]:
    """The v1 chain. Order matters: filters see cleaned text, and dedup runs last so it hashes only
    documents that would otherwise be kept."""
    return [
        HtmlExtractor(),
        Normalizer(simplify=config.to_simplified),
        LanguageTagger(),
        EmptyFilter(),
        MinCharsFilter(config.min_chars),
        ExactDedup(),
    ]


def build_corpus(
    inputs: Sequence[Path], out_dir: Path, config: DataConfig | None = None, progress: bool = True
) -> DataReport:
    """Clean the files under `inputs` into `out_dir`/{train,heldout}/shard-NNNNN.jsonl and report.json.

    Raises NotFound before writing anything if an input does not exist; any problem with a single
    file is counted in the report instead.
    """
    config = config or DataConfig()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise WattError(f"output path is a file, not a folder: {out_dir}")
    files = list_input_files([Path(path) for path in inputs], exclude=out_dir)
    source = FileSource(files, text_field=config.text_field)
    steps = default_steps(config)

    with _progress_bar(progress) as bar:
        task = bar.add_task("reading files", total=len(files)) if bar is not None else None
        on_file_done = (lambda: bar.advance(task)) if bar is not None else None
        docs: Iterable[Document] = source.run(on_file_done)
        for step in steps:
            docs = step(docs)
        kept_docs = list(docs)

    train, heldout = split_documents(kept_docs, config.heldout_fraction, config.seed)
    write_shards(train, out_dir / "train", config.shard_docs)
    write_shards(heldout, out_dir / "heldout", config.shard_docs)

    report = _report(source, steps, kept_docs, len(train), len(heldout))
    # Written last: a report.json means the shards beside it are complete.
    atomic_write_text(out_dir / "report.json", report.model_dump_json(indent=2) + "\n")
    return report


def _report(
    source: FileSource, steps: Sequence[PipelineStep], kept_docs: Sequence[Document], n_train: int, n_heldout: int
) -> DataReport:
    dropped: Counter[str] = Counter(source.skipped)
    for step in steps:
        dropped.update(step.dropped)
    return DataReport(
        files_seen=source.files_seen,
        files_failed=source.files_failed,
        docs_in=source.docs_out,
        docs_kept=len(kept_docs),
        docs_train=n_train,
        docs_heldout=n_heldout,
        chars_in=source.chars_out,
        chars_kept=sum(len(doc.text) for doc in kept_docs),
        steps=[StepStats(name=step.name, docs_in=step.docs_in, docs_out=step.docs_out) for step in steps],
        dropped=dict(sorted(dropped.items())),
        errors=source.errors,
        encodings=dict(sorted(source.encodings.items())),
    )


def _progress_bar(enabled: bool) -> AbstractContextManager[Progress | None]:
    if not enabled:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # stderr: stdout carries results (`--json`), progress is for the person watching.
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True))
