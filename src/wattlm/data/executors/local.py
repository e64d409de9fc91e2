"""The local sharded executor: per-document steps over input shards in worker processes, resumable.

The input files are cut into shards (contiguous runs of files in input order). Two phases run per shard,
each in up to `workers` processes:

- `read`: read the files, then the steps of phase `read` (extract HTML, normalize);
- `clean`: the steps of phase `clean` (boilerplate removal, with its line table counted over *all*
  `read` outputs in between; PII, language, filters), then the `prepare` work of the dedup steps.

When no `clean` step counts the corpus (no barrier), one task per shard (phase `shard`) runs both.

Each shard's documents go to `out_dir/.work/<phase>/shard-NNNNN.jsonl` and then its completion marker
`shard-NNNNN.done` (the step counts, as JSON), both written atomically; a rerun after a crash or kill
skips every shard whose marker exists (datatrove-style). The corpus-wide steps (exact, near and
paragraph dedup) then read the `clean` outputs in shard order, so the result is the same for any worker
count and whether or not the run was interrupted. `.work/fingerprint.json` (the config and the input
files' sizes and mtimes) makes a rerun with other inputs or settings start over instead of mixing.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wattlm.data.base import Phase, Step
from wattlm.data.config import DataConfig
from wattlm.data.document import Document
from wattlm.data.readers.source import FileSource, InputFile
from wattlm.data.steps import build_steps, step_class
from wattlm.shared.records import atomic_write_text, jsonl_records

WORK_DIR = ".work"
MAX_SHARDS = 64  # input shards per run: enough to balance 2-16 workers, few enough to keep .work small


def shard_files(files: Sequence[InputFile], max_shards: int = MAX_SHARDS) -> list[list[InputFile]]:
    """Contiguous groups of files; the grouping depends on the file list only (not on the worker count),
    so a run resumed with another number of workers finds its shards again."""
    size = max(1, math.ceil(len(files) / max_shards))
    return [list(files[start : start + size]) for start in range(0, len(files), size)]


def resolve_workers(workers: int) -> int:
    return workers if workers > 0 else (os.cpu_count() or 1)


def dump_doc(doc: Document) -> str:
    return json.dumps({"id": doc.id, "text": doc.text, "source": doc.source, "meta": doc.meta}, ensure_ascii=False)


def write_work_file(path: Path, text: str) -> None:
    """A `.work` file, atomically (temporary name + rename) but not fsynced: a `kill -9` cannot leave half a
    file under the final name, and a power cut can only lose work that a rerun redoes (the final shards
    and report.json are still synced). Syncing every shard file and marker cost 1-2 ms each."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_docs(path: Path) -> Iterator[Document]:
    for record in jsonl_records(path):  # written by dump_doc: a bad line is a bug, named by file and line
        yield Document(record["id"], record["text"], record["source"], record["meta"])


@dataclass(frozen=True)
class ShardTask:
    """One phase of one shard; picklable, so it can go to a worker process."""

    phase: str  # "read", "clean", or "shard" (both in one task)
    index: int
    work_dir: str
    config_json: str
    files: tuple[tuple, ...] = ()  # read phase: InputFile.task_fields() of each file
    counts: Any = None  # clean phase: this shard's share of a `counts_corpus` step's corpus counts

    @property
    def output(self) -> Path:
        return Path(self.work_dir) / self.phase / f"shard-{self.index:05d}.jsonl"

    @property
    def marker(self) -> Path:
        return Path(self.work_dir) / self.phase / f"shard-{self.index:05d}.done"


def phase_steps(config: DataConfig, phase: Phase) -> list[Step]:
    """Fresh steps of one phase, in the config's order (only those are built: a read-phase worker need
    not load a quality model)."""
    return build_steps([spec for spec in config.steps if step_class(spec.name).phase == phase])


def run_shard(task: ShardTask) -> None:
    """Run one phase of one shard and write its documents, then its marker. In a worker process."""
    started = time.perf_counter()
    config = DataConfig.model_validate_json(task.config_json)
    # phase "shard": both phases in one task (a pipeline without a corpus-count barrier)
    steps = (phase_steps(config, "read") + phase_steps(config, "clean") if task.phase == "shard"
             else phase_steps(config, task.phase))
    if task.phase in ("read", "shard"):
        source = FileSource([InputFile.from_task_fields(fields) for fields in task.files], config.text_field,
                            config.limits)
        docs: Iterator[Document] = source.run()
    else:
        source = None
        if task.counts is not None:
            next(step for step in steps if step.counts_corpus).use_counts(task.counts)
        docs = load_docs(Path(task.work_dir) / "read" / task.output.name)
    for step in steps:
        docs = step(docs)
    prepare_seconds = [0.0]
    if task.phase in ("clean", "shard"):
        for dedup_step in phase_steps(config, "dedup"):
            if type(dedup_step).prepare is not Step.prepare:  # only steps with work to do early
                docs = _prepared(docs, dedup_step, prepare_seconds)
    lines = [dump_doc(doc) for doc in docs]
    produced = time.perf_counter()
    write_work_file(task.output, "".join(line + "\n" for line in lines))
    # seconds: this shard's total and what no step accounts for (reading files or the read phase's
    # output, the dedup steps' early work, writing), for bench/data_bench.py's breakdown
    seconds = {"total": time.perf_counter() - started, "prepare": prepare_seconds[0],
               "write": time.perf_counter() - produced}
    state = {"source": source.stats_state() if source is not None else None,
             "steps": [step.stats_state() for step in steps], "seconds": seconds}
    write_work_file(task.marker, json.dumps(state, ensure_ascii=False))


def _prepared(docs: Iterator[Document], step: Step, seconds: list[float]) -> Iterator[Document]:
    """A dedup step's per-document work (NearDedup: the MinHash sketch) here, in parallel, rather than in
    the serial dedup pass; its time is added to seconds[0]."""
    clock = time.perf_counter
    for doc in docs:
        start = clock()
        step.prepare(doc)
        seconds[0] += clock() - start
        yield doc


def phase_seconds(states: Sequence[dict], steps: Sequence[Step], phase: str) -> dict[str, float]:
    """Seconds of one phase summed over its shards (worker time): each step, the dedup steps' early work,
    and the rest (reading the files or the previous phase's output, writing this one's)."""
    timings = {f"{phase}: {step.name}": step.seconds for step in steps}
    total = sum(state.get("seconds", {}).get("total", 0.0) for state in states)
    prepare = sum(state.get("seconds", {}).get("prepare", 0.0) for state in states)
    if prepare:
        timings[f"{phase}: dedup sketches (prepare)"] = prepare
    io_name = "load and write .work" if phase == "clean" else "read files, write .work"
    timings[f"{phase}: {io_name}"] = max(0.0, total - prepare - sum(step.seconds for step in steps))
    return timings


def fingerprint(config: DataConfig, files: Sequence[InputFile]) -> str:
    """What the intermediate outputs depend on: the settings of the per-document steps and the inputs."""
    settings = config.cache_settings()  # incl. the content hashes of a quality model or eval sets
    for key in ("output_format", "shard_docs", "heldout_fraction", "seed"):
        settings.pop(key)
    entries = []
    for file in files:
        stat = file.path.lstat() if file.refused else file.path.stat()  # a refused link may lead nowhere
        where = file.path.absolute() if file.refused else file.real_path()
        entries.append([str(where), file.source, stat.st_size, stat.st_mtime_ns, file.start, file.end])
    blob = json.dumps({"config": settings, "files": entries, "max_shards": MAX_SHARDS}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def prepare_work_dir(work_dir: Path, key: str) -> None:
    """Keep `work_dir` if it belongs to the same inputs and settings (resume), else start it afresh."""
    stamp = work_dir / "fingerprint.json"
    if work_dir.exists():
        try:
            same = json.loads(stamp.read_text("utf-8")).get("fingerprint") == key
        except (OSError, ValueError):
            same = False
        if same:
            return
        shutil.rmtree(work_dir)
    atomic_write_text(stamp, json.dumps({"fingerprint": key}) + "\n")


PRELOAD = "wattlm.data.executors.preload"


def worker_pool(workers: int) -> AbstractContextManager[ProcessPoolExecutor | None]:
    """A process pool for both phases, or None for one worker. forkserver/spawn, not fork: the parent may
    run threads (the progress bar), and forking a threaded process can deadlock. As with any such pool, a
    script calling build_corpus with workers > 1 needs the `if __name__ == "__main__":` guard.

    The forkserver preloads the steps' libraries, models and tables (executors/preload.py) and is started
    here, before the first task: it loads them while the caller lists the inputs, and the workers fork
    from it with everything in memory instead of each loading its own copy."""
    if workers <= 1:
        return nullcontext(None)
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    start_forkserver()
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"))


def start_forkserver() -> None:
    """Start the forkserver now (if not running) with the steps' preload: build_corpus calls this before
    it lists the inputs, so the server loads while the listing runs. A server already running (an
    earlier build in this process) keeps its preload; "__main__" is the default list's entry."""
    import multiprocessing.forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(["__main__", PRELOAD])
    multiprocessing.forkserver.ensure_running()


def start_early(config: DataConfig, workers: int) -> None:
    """What of the pool can start before the shard tasks exist: the local pool's forkserver."""
    if config.executor == "local" and workers > 1 and "forkserver" in multiprocessing.get_all_start_methods():
        start_forkserver()


def shard_pool(config: DataConfig, workers: int) -> AbstractContextManager[Any]:
    """Where the shard tasks run: a process pool (or this process), or Ray (`executor: ray`)."""
    if config.executor == "ray":
        from wattlm.data.executors.ray import ray_pool

        return ray_pool(workers, config.ray_address)
    return worker_pool(workers)


def run_phase(tasks: Sequence[ShardTask], pool: Any,
              on_done: Callable[[ShardTask], None] | None = None) -> int:
    """Run the tasks whose marker is missing, in `pool` (anything with an Executor's `submit`: a process
    pool or a RayPool) or (None) in this process; returns how many ran."""
    ran = [0]
    for _ in finished_in_order(tasks, pool, on_done, ran):
        pass
    return ran[0]


def finished_in_order(tasks: Sequence[ShardTask], pool: Any, on_done: Callable[[ShardTask], None] | None = None,
                      ran: list[int] | None = None) -> Iterator[ShardTask]:
    """Run the tasks whose marker is missing (as `run_phase`) and yield every task, in order, as soon as it
    and all before it are finished: the caller works on shard i (the serial dedup pass) while the
    workers still run shards after it, instead of waiting for the last one. The first failure of any
    task is raised at once (the others are cancelled). `ran[0]` receives how many tasks ran."""
    pending = [i for i, task in enumerate(tasks) if not (task.marker.exists() and task.output.exists())]
    if ran is not None:
        ran[0] = len(pending)
    if pool is None or len(pending) <= 1:
        for i, task in enumerate(tasks):
            if i in pending:
                run_shard_hook(task)
            if on_done is not None:
                on_done(task)
            yield task
        return
    futures: dict[int, Future[None]] = {i: pool.submit(run_shard, tasks[i]) for i in pending}
    remaining = set(futures.values())
    try:
        for i, task in enumerate(tasks):
            future = futures.get(i)
            # Wait for this task; another that fails meanwhile stops the run now, not when its turn comes.
            while future is not None and not future.done():
                done, remaining = wait(remaining, return_when=FIRST_EXCEPTION)
                for finished in done:
                    error = finished.exception()
                    if error is not None:
                        raise error
            if future is not None:
                remaining.discard(future)
                future.result()  # raises its error
            if on_done is not None:
                on_done(task)
            yield task
    finally:  # a failure here or in the caller (the dedup pass): the shards not started are not run
        for future in remaining:
            future.cancel()


def run_shard_hook(task: ShardTask) -> None:
    """In-process call of `run_shard`; a seam for tests that interrupt a run after some shards."""
    run_shard(task)


def load_state(task: ShardTask) -> dict:
    return json.loads(task.marker.read_text("utf-8"))
