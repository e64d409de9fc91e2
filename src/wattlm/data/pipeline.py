"""`build_corpus`: raw files -> clean, deduplicated train / held-out shards and a report.

The pipeline reads top to bottom: a file source, the steps of the `read` and `clean` phases (run per
input shard, possibly in worker processes, by executors/local.py), the `dedup` steps over the shards'
outputs in input order, then the split and the writes. Only the kept documents are held at the end, because the split
guarantee (at least one held-out document) needs to see them all.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from wattlm.data.base import PHASES, Step
from wattlm.data.card import write_card
from wattlm.data.config import DataConfig
from wattlm.data.document import Document, record_fields
from wattlm.data.executors.local import (
    WORK_DIR,
    ShardTask,
    fingerprint,
    finished_in_order,
    load_docs,
    load_state,
    phase_seconds,
    prepare_work_dir,
    resolve_workers,
    run_phase,
    shard_files,
    shard_pool,
    start_early,
)
from wattlm.data.readers.source import FileSource, list_input_files
from wattlm.data.readers.split_input import split_large_files
from wattlm.data.report import DataReport, StepStats
from wattlm.data.split import split_documents
from wattlm.data.stats import kept_samples, length_histogram
from wattlm.data.steps import build_steps
from wattlm.data.writer import write_shards
from wattlm.errors import WattError
from wattlm.shared.records import atomic_write_text

if TYPE_CHECKING:
    from rich.progress import Progress


def build_corpus(
    inputs: Sequence[Path], out_dir: Path, config: DataConfig | None = None, progress: bool = True,
    timings: dict[str, float] | None = None,
) -> DataReport:
    """Clean the files under `inputs` into `out_dir`/{train,heldout}/shard-NNNNN.jsonl (or .parquet),
    report.json and report.html.

    Raises NotFound before writing anything if an input does not exist; any problem with a single
    file is counted in the report instead. The per-document steps run over input shards in
    `config.workers` processes with completion markers under `out_dir/.work` (see executors/local.py): a
    rerun after a crash skips the finished shards, and the output never depends on the worker count.

    `timings`, when given, receives where the time went (seconds): each step's, summed over the worker
    processes, and each phase's wall time (bench/data_bench.py prints them; report.json, which must be
    the same for every run of the same inputs, never holds them).
    """
    # Files named in the config (quality model, eval sets) made absolute: shard tasks may run elsewhere.
    started = time.perf_counter()
    config = (config or DataConfig()).with_paths_under(Path.cwd())
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise WattError(f"output path is a file, not a folder: {out_dir}")
    workers = resolve_workers(config.workers)
    start_early(config, workers)  # the workers' forkserver loads the steps' models while we list the inputs
    # Large JSONL / text files become line-aligned byte ranges, so the workers share them.
    files = split_large_files(list_input_files([Path(path) for path in inputs], exclude=out_dir), config.split_bytes,
                              config.limits.max_file_bytes)
    source = FileSource(files, text_field=config.text_field)  # receives the shards' counts
    # These copies only receive the shards' counts (and run the dedup phase); workers build their own.
    steps = build_steps(config.steps)
    read_steps, clean_steps, dedup_steps = ([step for step in steps if step.phase == phase] for phase in PHASES)
    # Absolute paths in the tasks: a Ray worker (or a remote node) does not share our working directory.
    work_dir = out_dir.resolve() / WORK_DIR
    prepare_work_dir(work_dir, fingerprint(config, files))
    config_json = config.model_dump_json()
    shards = shard_files(files)
    clock = time.perf_counter
    walls: dict[str, float] = {"wall: list inputs": clock() - started}

    # A counting step (boilerplate lines) needs every shard's `read` output before `clean` can start: a
    # barrier between two tasks per shard. Without one, a single task per shard runs both phases, so the
    # read output is never written and read back and no worker waits at the barrier.
    counter = next((step for step in clean_steps if step.counts_corpus), None)
    first_steps = read_steps if counter is not None else read_steps + clean_steps

    with _progress_bar(progress) as bar, shard_pool(config, workers) as pool:
        task_id = bar.add_task("reading files", total=len(files)) if bar is not None else None
        read_tasks = [ShardTask("read" if counter is not None else "shard", i, str(work_dir), config_json,
                                files=tuple(f.task_fields() for f in shard))
                      for i, shard in enumerate(shards)]
        on_read = (lambda task: bar.advance(task_id, len(task.files))) if bar is not None else None
        last_tasks, on_last, mark = read_tasks, on_read, clock()
        if counter is not None:
            run_phase(read_tasks, pool, on_read)
            walls["wall: read phase"], mark = clock() - mark, clock()
            shard_counts = counter.count_corpus([load_docs(task.output) for task in read_tasks])
            walls["wall: corpus counts (barrier)"], mark = clock() - mark, clock()
            last_tasks = [ShardTask("clean", i, str(work_dir), config_json, counts=shard_counts[i])
                          for i in range(len(shards))]
            on_last = None
            if bar is not None:
                clean_id = bar.add_task("cleaning shards", total=len(last_tasks))
                on_last = lambda task: bar.advance(clean_id)  # noqa: E731

        # The serial dedup pass takes each shard's output as soon as that shard and all before it are
        # done, while the workers run the later ones (same order, so the same result as waiting for all).
        main = {"load": 0.0, "wait": 0.0, "last shard": 0.0}
        finished = finished_in_order(last_tasks, pool, on_last)
        docs: Iterable[Document] = _shard_outputs(finished, main)
        for step in dedup_steps:
            docs = step(docs)
        try:
            kept_docs = list(docs)
        finally:  # on an error here, the shards not started yet are cancelled, not waited for
            finished.close()
        phase = "clean" if counter is not None else "shard"
        walls[f"wall: {phase} tasks + dedup (overlapped)"] = main["last shard"] - mark
        walls["wall: dedup after the last shard"], mark = clock() - main["last shard"], clock()

    read_states = [load_state(task) for task in read_tasks]
    for state in read_states:
        source.merge_stats(state["source"])
        for step, step_state in zip(first_steps, state["steps"], strict=True):
            step.merge_stats(step_state)
    clean_states = [load_state(task) for task in last_tasks] if counter is not None else []
    for state in clean_states:
        for step, step_state in zip(clean_steps, state["steps"], strict=True):
            step.merge_stats(step_state)

    train, heldout = split_documents(kept_docs, config.heldout_fraction, config.seed)
    fields = record_fields(kept_docs)  # front matter columns: one schema for both splits
    write_shards(train, out_dir / "train", config.shard_docs, config.output_format, fields)
    write_shards(heldout, out_dir / "heldout", config.shard_docs, config.output_format, fields)

    walls["wall: split and write shards"], mark = clock() - mark, clock()
    report = _report(source, steps, kept_docs, len(train), len(heldout))
    write_card(report, out_dir / "report.html")
    # Written last: a report.json means the shards beside it are complete.
    atomic_write_text(out_dir / "report.json", report.model_dump_json(indent=2) + "\n")
    shutil.rmtree(work_dir, ignore_errors=True)
    walls["wall: report and clean-up"] = clock() - mark
    dedup_seconds = {f"main: {step.name}": step.seconds for step in dedup_steps}
    dedup_seconds["main: load .work"] = main["load"]
    dedup_seconds["main: waiting for shards"] = main["wait"]
    shard_seconds = (phase_seconds(read_states, first_steps, "shard") if counter is None else
                     {**phase_seconds(read_states, read_steps, "read"), **phase_seconds(clean_states, clean_steps, "clean")})
    if timings is not None:
        timings.update({**shard_seconds, **dedup_seconds, **walls, "wall: total": clock() - started})
    return report


def _shard_outputs(tasks: Iterator[ShardTask], seconds: dict[str, float]) -> Iterator[Document]:
    """The documents of each finished shard's output in turn; adds the seconds spent loading them and
    waiting for the workers to `seconds`, and when the last shard was there ("last shard", a clock time)."""
    clock = time.perf_counter
    while True:
        start = clock()
        task = next(tasks, None)
        loaded = clock()
        seconds["wait"] += loaded - start
        if task is None:
            seconds["last shard"] = loaded
            return
        docs = list(load_docs(task.output))
        seconds["load"] += clock() - loaded
        yield from docs


def _report(
    source: FileSource, steps: Sequence[Step], kept_docs: Sequence[Document], n_train: int, n_heldout: int
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
