"""Data-stage throughput: our pipeline vs datatrove on the same generated corpus, same run.

The generator scales examples/power-grid/raw (HTML, text and Markdown files) to N documents: every
document keeps the layout of a sample file (HTML chrome, headings, paragraph count) but its sentences
are drawn from a pool of all the corpus's sentences with digits re-rolled, so near-dedup does not
collapse it; 4 % of documents are planted exact copies and 4 % near copies (one sentence changed) of an
earlier one. Everything derives from --seed: two runs write the same bytes.

Equivalent steps on both sides, 2 worker processes each:
- ours (`build_corpus`): read, trafilatura, normalize, language id, Gopher-style ratio and repetition
  filters, exact + MinHash LSH dedup; boilerplate, PII and paragraph dedup switched off (datatrove has no
  counterpart; normalization and language id stay: extra work on our side).
- datatrove 0.10.x: a reader of the same files, its `Trafilatura` extractor (text files pass through
  the extractor's sandbox unextracted), `GopherRepetitionFilter`, `GopherQualityFilter`, and its 4-stage
  MinHash dedup (`MinhashDedupSignature/Buckets/Cluster/Filter`), as in datatrove's own minhash example;
  the intermediate and final documents are Parquet (its JSONL writer needs orjson, not installed).
  datatrove's word tokenizers for zh/en need spaCy (+ jieba), which we do not install; both sides
  therefore tokenize the same way ours does -- hanzi as single tokens, Latin words as words -- through a
  `WordTokenizer` subclass, datatrove's documented hook for custom tokenizers. The Gopher limits are
  datatrove's defaults, with n-gram windows doubled for this character tokenization (as ours do) and the
  word-length / stop-word rules, which assume English words, off.

Method: each side runs in its own child process, alternately (wattlm, datatrove, wattlm, datatrove,
... `--repeats` times each), on the same corpus; the table gives each run's wall time and CPU time (the
child and every process it waited for: workers, the forkserver), the load average before and after,
and the medians; the headline line (the only one with that word) divides the median docs/s. Then
the per-step breakdown of both sides (ours: `build_corpus(..., timings=)`, seconds inside each step
summed over the worker processes, and wall time per phase; datatrove: its own per-step stats), the peak
RSS of our main process, and (`--synthetic-docs`, default 1,000,000) the dedup phase of our main process over
that many synthetic documents with random sketches: its time and peak RSS. Our three character-share
filters are printed as `*_share` (their step names end in the headline word).

    .venv/bin/python bench/data_bench.py                       # 10,000 documents, 3 runs a side (~5 min quiet)
    .venv/bin/python bench/data_bench.py --docs 50000          # the large size
    .venv/bin/python bench/data_bench.py --docs 2000 --repeats 1 --synthetic-docs 0   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "power-grid" / "raw"
_SENTENCE = re.compile(r"[^。！？!?]+[。！？!?]?|[^.]+\.(?=\s|$)")
_TEXT_NODE = re.compile(r">([^<>]+)<")
_DIGIT = re.compile(r"\d")
EXACT_SHARE = NEAR_SHARE = 0.04


# ---------------------------------------------------------------- the generator
def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(text) if len(s.strip()) >= 8]


def load_samples() -> tuple[list[tuple[str, str]], list[str]]:
    """(suffix, text) of every HTML / text / Markdown sample, and the pool of their sentences."""
    samples, pool = [], []
    for path in sorted(SAMPLE.iterdir()):
        if path.suffix not in (".html", ".txt", ".md"):
            continue
        try:
            text = path.read_text("utf-8")
        except UnicodeDecodeError:
            continue  # the GBK sample: the generator writes UTF-8 only
        samples.append((path.suffix, text))
        nodes = _TEXT_NODE.findall(text) if path.suffix == ".html" else text.split("\n")
        for node in nodes:
            pool += _sentences(node)
    return samples, sorted(set(pool))


def _reroll_digits(text: str, rng: random.Random) -> str:
    return _DIGIT.sub(lambda _: str(rng.randrange(10)), text)


def _fill(node: str, pool: list[str], rng: random.Random) -> str:
    """The same number of sentences as `node`, drawn from the pool; short nodes (headings, menus) stay."""
    count = len(_sentences(node))
    if count == 0 or len(node.strip()) < 20:
        return node
    joiner = " " if node.isascii() else ""
    return joiner.join(_reroll_digits(rng.choice(pool), rng) for _ in range(count))


def generate(i: int, samples: list[tuple[str, str]], pool: list[str], seed: int) -> tuple[str, str]:
    """(suffix, text) of document i; planted copies point back to an earlier document."""
    rng = random.Random(seed * 1_000_003 + i)
    roll = rng.random()
    if i >= 50 and roll < EXACT_SHARE + NEAR_SHARE:
        suffix, text = generate(rng.randrange(i), samples, pool, seed)
        if roll < EXACT_SHARE:
            return suffix, text
        victims = _sentences(text)
        return suffix, text.replace(victims[len(victims) // 2], rng.choice(pool), 1) if victims else text
    suffix, template = samples[i % len(samples)]
    if suffix == ".html":
        return suffix, _TEXT_NODE.sub(lambda m: ">" + _fill(m.group(1), pool, rng) + "<", template)
    return suffix, "\n".join(_fill(line, pool, rng) for line in template.split("\n"))


def write_corpus(folder: Path, n_docs: int, seed: int = 0) -> int:
    """Write n_docs documents under folder/NNN/; returns the bytes written."""
    samples, pool = load_samples()
    total = 0
    for i in range(n_docs):
        suffix, text = generate(i, samples, pool, seed)
        path = folder / f"{i // 1000:03d}" / f"doc{i:06d}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8")
        path.write_bytes(data)
        total += len(data)
    return total


# ---------------------------------------------------------------- our pipeline
def run_ours(corpus: Path, out: Path, workers: int) -> dict:
    import multiprocessing.forkserver

    from wattlm.data import DataConfig, build_corpus

    config = DataConfig(workers=workers, remove_boilerplate=False, scrub_pii=False, paragraph_dedup_min_docs=0)
    start = time.perf_counter()
    timings: dict[str, float] = {}
    report = build_corpus([corpus], out, config, progress=False, timings=timings)
    seconds = time.perf_counter() - start
    # Stop the pool's forkserver and wait for it, so the workers' CPU time (the forkserver waits for
    # them) reaches this process's children's time, which the parent reads.
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    if server is not None and hasattr(server, "_stop"):
        server._stop()
    return {"seconds": seconds, "docs_in": report.docs_in, "kept": report.docs_kept,
            "steps": {name.replace("ratio", "share"): value for name, value in timings.items()}}


def synthetic_dedup(n_docs: int, seed: int = 0) -> dict:
    """Our dedup phase (exact + near) over n_docs synthetic documents as the main process receives them
    from the clean phase (a short text, a base64 sketch), 5 % of them near copies of an earlier one:
    its time and the main process's peak RSS, the memory the index and the kept documents need."""
    import base64

    import numpy as np

    from wattlm.data.dedup.exact import ExactDedup
    from wattlm.data.dedup.minhash import SKETCH_KEY, NearDedup
    from wattlm.data.document import Document

    rng = np.random.default_rng(seed)

    def docs():
        recent = np.zeros((1000, 128), dtype=np.uint32)  # the last 1,000 sketches, a ring
        for i in range(n_docs):
            if i and rng.random() < 0.05:  # a near copy: 20 of 128 values redrawn (Jaccard about 0.85)
                values = recent[int(rng.integers(min(i, 1000)))].copy()
                values[rng.integers(128, size=20)] = rng.integers(2**32, size=20, dtype=np.uint32)
            else:
                values = rng.integers(2**32, size=128, dtype=np.uint32)
            recent[i % 1000] = values
            text = f"文档 {i} " + "变电站巡视记录，设备运行正常。" * 6
            yield Document(f"{i:016x}", text, f"s/{i}.txt",
                           {"lang": "zh", SKETCH_KEY: base64.b64encode(values.astype("<u4").tobytes()).decode()})

    start = time.perf_counter()
    kept = list(NearDedup()(ExactDedup()(docs())))
    return {"seconds": time.perf_counter() - start, "docs": n_docs, "kept": len(kept),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


# ---------------------------------------------------------------- datatrove
def hanzi_tokenizer():
    """A datatrove WordTokenizer that splits like ours: each hanzi a token, Latin words as words."""
    from datatrove.utils.word_tokenizers import WordTokenizer

    token = re.compile(r"[\u3400-\u9fff]|[^\W\d_\u3400-\u9fff]+|\d+")
    sentence_end = re.compile(r"[^。！？!?.\n]+[。！？!?.\n]*")

    class HanziWordTokenizer(WordTokenizer):
        def word_tokenize(self, text: str) -> list[str]:
            return token.findall(text)

        def sent_tokenize(self, text: str) -> list[str]:
            return [m.group().strip() for m in sentence_end.finditer(text) if m.group().strip()]

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            return [m.span() for m in sentence_end.finditer(text)]

    return HanziWordTokenizer("zh")


def datatrove_steps(corpus: Path, work: Path, workers: int, tasks: int):
    from datatrove.data import Document
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.readers.base import BaseDiskReader
    from datatrove.pipeline.writers import ParquetWriter

    class FileReader(BaseDiskReader):
        """One document per file (datatrove has no reader for folders of .html/.txt files)."""

        name = "files"

        def read_file(self, filepath: str):
            with self.data_folder.open(filepath, "r", encoding="utf-8") as handle:
                text = handle.read()
            yield Document(text=text, id=filepath, metadata={"html": filepath.endswith(".html")})

    class HtmlOnlyTrafilatura(Trafilatura):
        """datatrove's extractor; non-HTML text passes through the same sandbox unextracted."""

        def extract(self, text: str) -> str:
            return super().extract(text) if text.lstrip().startswith("<") else text

    from datatrove.utils.hashing import HashConfig

    tokenizer = hanzi_tokenizer()
    # sha1, not the default xxhash: datatrove 0.10.1 passes str to xxhash, which xxhash 4.x rejects.
    minhash = MinhashConfig(n_grams=5, hash_config=HashConfig(precision=64, hash_fc="sha1"))
    sigs, buckets, clusters = work / "sigs", work / "buckets", work / "clusters"
    filtered, output, logs = work / "filtered", work / "output", work / "logs"
    stage1 = LocalPipelineExecutor(pipeline=[
        FileReader(str(corpus), glob_pattern="*/*"),
        HtmlOnlyTrafilatura(favour_precision=True, timeout=10, deduplicate=False, include_tables=True),
        GopherRepetitionFilter(top_n_grams=((4, 0.2), (6, 0.18), (8, 0.16)),
                               dup_n_grams=tuple((2 * n, limit) for n, limit in
                                                 ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.1))),
                               language=tokenizer),
        GopherQualityFilter(min_doc_words=None, min_avg_word_length=None, max_avg_word_length=None,
                            min_stop_words=None, language=tokenizer),
        ParquetWriter(str(filtered)),
        MinhashDedupSignature(output_folder=str(sigs), config=minhash, language=tokenizer),
    ], tasks=tasks, workers=workers, logging_dir=str(logs / "1"), start_method="fork")
    stage2 = LocalPipelineExecutor(pipeline=[
        MinhashDedupBuckets(input_folder=str(sigs), output_folder=str(buckets), config=minhash),
    ], tasks=minhash.num_buckets, workers=workers, logging_dir=str(logs / "2"), start_method="fork")
    stage3 = LocalPipelineExecutor(pipeline=[
        MinhashDedupCluster(input_folder=str(buckets), output_folder=str(clusters), config=minhash),
    ], tasks=1, logging_dir=str(logs / "3"), start_method="fork")
    stage4 = LocalPipelineExecutor(pipeline=[
        ParquetReader(str(filtered)),
        MinhashDedupFilter(input_folder=str(clusters)),
        ParquetWriter(str(output)),
    ], tasks=tasks, workers=workers, logging_dir=str(logs / "4"), start_method="fork")
    return [stage1, stage2, stage3, stage4], output


def run_datatrove(corpus: Path, work: Path, workers: int, tasks: int) -> dict:
    import pyarrow.parquet as pq
    from datatrove.utils.logging import logger

    logger.remove()  # per-task logs still go to work/logs
    stages, output = datatrove_steps(corpus, work, workers, tasks)
    start = time.perf_counter()
    for stage in stages:
        stage.run()
    elapsed = time.perf_counter() - start
    kept = sum(pq.read_metadata(path).num_rows for path in output.glob("*.parquet"))
    steps = {}
    for number in range(1, len(stages) + 1):  # datatrove's own per-step stats (summed over tasks)
        for step in json.loads((work / "logs" / str(number) / "stats.json").read_text("utf-8")):
            timing = step.get("time_stats")
            name = f"stage {number}: " + step["name"].encode("ascii", "ignore").decode().strip(" -")
            steps[name] = timing.get("total", 0.0) if isinstance(timing, dict) else float(timing or 0)
    return {"seconds": elapsed, "kept": kept, "steps": steps}


# ---------------------------------------------------------------- one side per child process
def run_side(args: argparse.Namespace) -> None:
    """`--side`: run one side here and write what it measured as JSON (the parent measures CPU time)."""
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    if args.side == "ours":
        result = run_ours(Path(args.corpus), out, args.workers)
    elif args.side == "datatrove":
        result = run_datatrove(Path(args.corpus), out, args.workers, args.tasks)
    else:
        result = synthetic_dedup(args.synthetic_docs, args.seed)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    shutil.rmtree(out, ignore_errors=True)
    Path(args.result).write_text(json.dumps(result), "utf-8")


def child(side: str, args: argparse.Namespace, tmp: Path) -> dict:
    """Run one side in a child process; adds its wall time and its CPU time (self + waited-for children)."""
    result_file = tmp / f"{side}.json"
    command = [sys.executable, __file__, "--side", side, "--corpus", str(tmp / "corpus"), "--out", str(tmp / side),
               "--result", str(result_file), "--workers", str(args.workers), "--tasks", str(args.tasks),
               "--synthetic-docs", str(args.synthetic_docs), "--seed", str(args.seed)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # The child's own output (datatrove prints its stats tables) is shown only when it fails.
    done = subprocess.run(command, env={**os.environ, "PYTHONHASHSEED": "0"}, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"the {side} run failed (exit {done.returncode})")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(result_file.read_text("utf-8"))
    result["wall"] = wall
    result["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def _load() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def print_steps(title: str, runs: list[dict]) -> None:
    """Median seconds per step over the runs of one side."""
    names = list(runs[0]["steps"])
    print(f"\n| {title} | seconds (median of {len(runs)}) |")
    print("| --- | --- |")
    for name in names:
        print(f"| {name} | {statistics.median(run['steps'].get(name, 0.0) for run in runs):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side, alternating")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=8, help="datatrove tasks for the reading stages")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synthetic-docs", type=int, default=1_000_000,
                        help="documents of the synthetic dedup run (0: skip it)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    parser.add_argument("--side", choices=("ours", "datatrove", "synthetic"), help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        return run_side(args)

    tmp = Path(tempfile.mkdtemp(prefix="watt-data-bench-"))
    try:
        start = time.perf_counter()
        size = write_corpus(tmp / "corpus", args.docs, args.seed)
        print(f"generated {args.docs:,} documents ({size / 1e6:.1f} MB) in {time.perf_counter() - start:.1f} s "
              f"under {tmp}; {os.cpu_count()} CPUs", flush=True)
        runs: dict[str, list[dict]] = {"ours": [], "datatrove": []}
        print("\n| run | side | wall s | CPU s (self+children) | docs/s | docs kept | peak RSS main MB | "
              "load avg before | load avg after |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for repeat in range(args.repeats):
            for side in ("ours", "datatrove"):
                load_before = _load()
                result = child(side, args, tmp)
                result["docs_per_s"] = args.docs / result["wall"]
                runs[side].append(result)
                name = "wattlm" if side == "ours" else "datatrove"
                print(f"| {repeat + 1} | {name} | {result['wall']:.1f} | {result['cpu']:.1f} | "
                      f"{result['docs_per_s']:,.0f} | {result['kept']:,} | {result['peak_rss_mb']:,.0f} | "
                      f"{load_before} | {_load()} |", flush=True)
        medians = {side: {key: statistics.median(run[key] for run in runs[side])
                          for key in ("wall", "cpu", "docs_per_s", "peak_rss_mb")} for side in runs}
        print(f"\nmedians of {args.repeats}, {args.workers} workers each:")
        for side, name in (("ours", "wattlm"), ("datatrove", "datatrove")):
            median = medians[side]
            print(f"  {name}: {median['wall']:.1f} s wall, {median['cpu']:.1f} s CPU, {median['docs_per_s']:,.0f} docs/s, "
                  f"peak RSS of the main process {median['peak_rss_mb']:,.0f} MB")
        print(f"  CPU seconds per 1,000 documents: wattlm {1000 * medians['ours']['cpu'] / args.docs:.1f}, "
              f"datatrove {1000 * medians['datatrove']['cpu'] / args.docs:.1f}")
        print(f"\nratio (median wattlm docs/s / median datatrove docs/s, {args.docs:,} documents): "
              f"{medians['ours']['docs_per_s'] / medians['datatrove']['docs_per_s']:.2f}x", flush=True)
        print_steps("wattlm step (worker seconds; wall: per phase)", runs["ours"])
        print_steps("datatrove step (its stats, seconds summed over tasks)", runs["datatrove"])
        if args.synthetic_docs:
            synthetic = child("synthetic", args, tmp)
            print(f"\nour dedup phase over {synthetic['docs']:,} synthetic documents (random sketches, 5 % near copies): "
                  f"{synthetic['seconds']:.1f} s, {synthetic['kept']:,} kept, peak RSS of the main process "
                  f"{synthetic['peak_rss_mb']:,.0f} MB")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
