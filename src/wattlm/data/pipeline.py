"""`build_corpus`: raw files -> clean, deduplicated train / held-out shards and a report.

The pipeline reads top to bottom: a file source, the per-document steps (run per input shard, possibly
in worker processes, by executor.py), the corpus-wide dedup steps over the shards' outputs in input
order, then the split and the writes. Only the kept documents are held at the end, because the split
guarantee (at least one held-out document) needs to see them all.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from wattlm.data.base import PipelineStep
from wattlm.data.boilerplate import BoilerplateRemover, source_group
from wattlm.data.card import write_card
from wattlm.data.config import DataConfig
from wattlm.data.decontaminate import Decontaminator
from wattlm.data.dedup import ExactDedup
from wattlm.data.document import Document
from wattlm.data.executor import (
    READ_PHASE_STEPS,
    WORK_DIR,
    ShardTask,
    fingerprint,
    load_docs,
    load_state,
    prepare_work_dir,
    resolve_workers,
    run_phase,
    shard_files,
    shard_pool,
)
from wattlm.data.extract import HtmlExtractor
from wattlm.data.filters import EmptyFilter, MinCharsFilter
from wattlm.data.lang import LanguageTagger
from wattlm.data.neardup import NearDedup
from wattlm.data.normalize import Normalizer
from wattlm.data.paragraph_dedup import ParagraphDedup
from wattlm.data.perplexity import PerplexityFilter
from wattlm.data.pii import PiiScrubber
from wattlm.data.quality import DigitRatioFilter, EndPunctuationFilter, ScriptRatioFilter, SymbolRatioFilter
from wattlm.data.quality_classifier import QualityClassifier
from wattlm.data.repetition import RepeatedLinesFilter, RepeatedNgramsFilter
from wattlm.data.report import DataReport, StepStats
from wattlm.data.source import FileSource, list_input_files
from wattlm.data.split import split_documents
from wattlm.data.split_input import split_large_files
from wattlm.data.stats import kept_samples, length_histogram
from wattlm.data.writer import write_shards
from wattlm.errors import WattError
from wattlm.shared.records import atomic_write_text

if TYPE_CHECKING:
    from rich.progress import Progress


def per_document_steps(config: DataConfig) -> list[PipelineStep]:
    """The steps that judge or change one document at a time (boilerplate removal too, once its line
    table is counted): the sharded executor runs them in worker processes."""
    steps: list[PipelineStep] = [HtmlExtractor(), Normalizer(config.to_simplified, config.repair_text)]
    if config.remove_boilerplate:
        steps.append(BoilerplateRemover(config.boilerplate_min_docs, config.boilerplate_min_share))
    if config.scrub_pii:
        steps.append(PiiScrubber())
    steps += [LanguageTagger(), EmptyFilter(), MinCharsFilter(config.min_chars)]
    if config.quality_filters:
        steps += [
            ScriptRatioFilter(config.min_script_ratio),
            SymbolRatioFilter(config.max_symbol_ratio),
            DigitRatioFilter(config.max_digit_ratio),
            EndPunctuationFilter(config.min_end_punctuation),
            RepeatedLinesFilter(config.max_duplicate_lines, config.max_duplicate_line_chars),
            RepeatedNgramsFilter(config.repetition_scale),
        ]
    # Costlier judges last, so they see only what the cheap filters kept: an n-gram lookup per
    # document, then a linear model, then a language-model forward pass.
    if config.eval_sets:
        steps.append(Decontaminator(config.eval_sets, config.contamination_words, config.contamination_chars,
                                    config.to_simplified))
    if config.quality_model is not None:
        steps.append(QualityClassifier(config.quality_model, config.quality_threshold))
    if config.perplexity_model is not None:
        # One llama.cpp thread per worker process; parallelism comes from `workers`. On a shared 2-core
        # machine two spinning OpenMP threads made a 17-token eval take 15 s instead of 1.4 s.
        steps.append(PerplexityFilter(config.perplexity_model, config.max_perplexity, config.perplexity_tokens, 1))
    return steps


def corpus_steps(config: DataConfig) -> list[PipelineStep]:
    """The dedup steps: each document is compared with all before it, so they run in one process over
    the documents in input order."""
    steps: list[PipelineStep] = [ExactDedup()]
    if config.near_dedup:
        steps.append(NearDedup(config.near_dup_threshold, config.near_dup_num_perm))
    if config.paragraph_dedup_min_docs:
        steps.append(ParagraphDedup(config.paragraph_dedup_min_docs, config.paragraph_min_chars, config.min_chars))
    return steps


def default_steps(config: DataConfig) -> list[PipelineStep]:
    """The chain; docs/data.md explains the order. In short: clean text first (extract, normalize,
    boilerplate, PII) so every later step judges what will be written; cheap per-document filters
    next; dedup last, so it compares only documents that would otherwise be kept, and near-dup sees
    copies that differed only in chrome, debris or phone numbers as the same text."""
    return per_document_steps(config) + corpus_steps(config)


def build_corpus(
    inputs: Sequence[Path], out_dir: Path, config: DataConfig | None = None, progress: bool = True
) -> DataReport:
    """Clean the files under `inputs` into `out_dir`/{train,heldout}/shard-NNNNN.jsonl (or .parquet),
    report.json and report.html.

    Raises NotFound before writing anything if an input does not exist; any problem with a single
    file is counted in the report instead. The per-document steps run over input shards in
    `config.workers` processes with completion markers under `out_dir/.work` (see executor.py): a
    rerun after a crash skips the finished shards, and the output never depends on the worker count.
    """
    # Files named in the config (quality model, eval sets) made absolute: shard tasks may run elsewhere.
    config = (config or DataConfig()).with_paths_under(Path.cwd())
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise WattError(f"output path is a file, not a folder: {out_dir}")
    # Large JSONL / text files become line-aligned byte ranges, so the workers share them.
    files = split_large_files(list_input_files([Path(path) for path in inputs], exclude=out_dir), config.split_bytes)
    source = FileSource(files, text_field=config.text_field)  # receives the shards' counts
    doc_steps, dedup_steps = per_document_steps(config), corpus_steps(config)
    read_steps, clean_steps = doc_steps[:READ_PHASE_STEPS], doc_steps[READ_PHASE_STEPS:]
    workers = resolve_workers(config.workers)
    # Absolute paths in the tasks: a Ray worker (or a remote node) does not share our working directory.
    work_dir = out_dir.resolve() / WORK_DIR
    prepare_work_dir(work_dir, fingerprint(config, files))
    config_json = config.model_dump_json()
    shards = shard_files(files)

    with _progress_bar(progress) as bar, shard_pool(config, workers) as pool:
        task_id = bar.add_task("reading files", total=len(files)) if bar is not None else None
        read_tasks = [ShardTask("read", i, str(work_dir), config_json,
                                files=tuple((str(f.path.resolve()), f.source, f.start, f.end, f.first_line)
                                            for f in shard))
                      for i, shard in enumerate(shards)]
        on_read = (lambda task: bar.advance(task_id, len(task.files))) if bar is not None else None
        run_phase(read_tasks, pool, on_read)
        for task in read_tasks:
            state = load_state(task)
            source.merge_stats(state["source"])
            for step, step_state in zip(read_steps, state["steps"], strict=True):
                step.merge_stats(step_state)

        # The boilerplate count needs every document's normalized text: a barrier between the phases.
        remover = next((step for step in clean_steps if isinstance(step, BoilerplateRemover)), None)
        tables: list[dict[str, set[str]] | None] = [None] * len(shards)
        if remover is not None:
            shard_groups: list[set[str]] = [set() for _ in read_tasks]

            def read_docs() -> Iterator[Document]:  # one pass: the count, and each shard's groups
                for task in read_tasks:
                    for doc in load_docs(task.output):
                        shard_groups[task.index].add(source_group(doc.source))
                        yield doc

            table = remover.repeated_lines(read_docs())
            tables = [{group: table[group] for group in groups if group in table} for groups in shard_groups]
        clean_tasks = [ShardTask("clean", i, str(work_dir), config_json, table=tables[i])
                       for i in range(len(shards))]
        if bar is not None:
            clean_id = bar.add_task("cleaning shards", total=len(clean_tasks))
            run_phase(clean_tasks, pool, lambda task: bar.advance(clean_id))
        else:
            run_phase(clean_tasks, pool)
        for task in clean_tasks:
            for step, step_state in zip(clean_steps, load_state(task)["steps"], strict=True):
                step.merge_stats(step_state)

        docs: Iterable[Document] = (doc for task in clean_tasks for doc in load_docs(task.output))
        for step in dedup_steps:
            docs = step(docs)
        kept_docs = list(docs)

    train, heldout = split_documents(kept_docs, config.heldout_fraction, config.seed)
    write_shards(train, out_dir / "train", config.shard_docs, config.output_format)
    write_shards(heldout, out_dir / "heldout", config.shard_docs, config.output_format)

    report = _report(source, doc_steps + dedup_steps, kept_docs, len(train), len(heldout))
    write_card(report, out_dir / "report.html")
    # Written last: a report.json means the shards beside it are complete.
    atomic_write_text(out_dir / "report.json", report.model_dump_json(indent=2) + "\n")
    shutil.rmtree(work_dir, ignore_errors=True)
    return report


def _report(
    source: FileSource, steps: Sequence[PipelineStep], kept_docs: Sequence[Document], n_train: int, n_heldout: int
) -> DataReport:
    dropped: Counter[str] = Counter(source.skipped)
    extras: dict[str, object] = {}
    dropped_samples: list[dict[str, str]] = []
    for step in steps:
        dropped.update(step.dropped)
        extras.update(step.report_extras())
        dropped_samples += step.dropped_samples
    lang_mix = Counter(doc.meta.get("lang", "other") for doc in kept_docs)
    return DataReport(
        files_seen=source.files_seen,
        files_failed=source.files_failed,
        docs_in=source.docs_out,
        docs_kept=len(kept_docs),
        docs_train=n_train,
        docs_heldout=n_heldout,
        chars_in=source.chars_out,
        chars_kept=sum(len(doc.text) for doc in kept_docs),
        steps=[StepStats(name=step.name, docs_in=step.docs_in, docs_out=step.docs_out,
                         chars_in=step.chars_in, chars_out=step.chars_out) for step in steps],
        dropped=dict(sorted(dropped.items())),
        errors=source.errors,
        encodings=dict(sorted(source.encodings.items())),
        lang_mix=dict(sorted(lang_mix.items())),
        length_histogram=length_histogram([len(doc.text) for doc in kept_docs]),
        samples={"kept": kept_samples(kept_docs), "dropped": dropped_samples},
        **extras,
    )


def _progress_bar(enabled: bool) -> AbstractContextManager[Progress | None]:
    if not enabled:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # stderr: stdout carries results (`--json`), progress is for the person watching.
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True))
