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

    .venv/bin/python bench/data_bench.py                 # 50,000 documents (several minutes each side)
    .venv/bin/python bench/data_bench.py --docs 2000     # quick
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
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
def run_ours(corpus: Path, out: Path, workers: int) -> tuple[float, int, int]:
    from wattlm.data import DataConfig, build_corpus

    config = DataConfig(workers=workers, remove_boilerplate=False, scrub_pii=False, paragraph_dedup_min_docs=0)
    start = time.perf_counter()
    report = build_corpus([corpus], out, config, progress=False)
    return time.perf_counter() - start, report.docs_in, report.docs_kept


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


def run_datatrove(corpus: Path, work: Path, workers: int, tasks: int) -> tuple[float, int]:
    import pyarrow.parquet as pq
    from datatrove.utils.logging import logger

    logger.remove()  # per-task logs still go to work/logs
    stages, output = datatrove_steps(corpus, work, workers, tasks)
    start = time.perf_counter()
    for stage in stages:
        stage.run()
    elapsed = time.perf_counter() - start
    kept = sum(pq.read_metadata(path).num_rows for path in output.glob("*.parquet"))
    return elapsed, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=8, help="datatrove tasks for the reading stages")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="watt-data-bench-"))
    try:
        start = time.perf_counter()
        size = write_corpus(tmp / "corpus", args.docs, args.seed)
        print(f"generated {args.docs:,} documents ({size / 1e6:.1f} MB) in {time.perf_counter() - start:.1f} s "
              f"under {tmp}", flush=True)
        ours_s, ours_in, ours_kept = run_ours(tmp / "corpus", tmp / "ours", args.workers)
        print(f"ours done in {ours_s:.1f} s", flush=True)
        dt_s, dt_kept = run_datatrove(tmp / "corpus", tmp / "datatrove", args.workers, args.tasks)
        print(f"datatrove done in {dt_s:.1f} s", flush=True)
        print(f"\n| pipeline ({args.workers} workers) | seconds | docs/s | docs kept |")
        print("| --- | --- | --- | --- |")
        print(f"| wattlm | {ours_s:.1f} | {ours_in / ours_s:,.0f} | {ours_kept:,} |")
        print(f"| datatrove | {dt_s:.1f} | {args.docs / dt_s:,.0f} | {dt_kept:,} |")
        print(f"\nratio (wattlm docs/s / datatrove docs/s): {(ours_in / ours_s) / (args.docs / dt_s):.2f}x")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
