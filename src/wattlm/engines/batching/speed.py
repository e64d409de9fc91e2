"""How fast the batch engine serves a GGUF on this machine, against llama.cpp decoding it directly.

The run report's serving figures (recipe field export.serve_check). The engine is timed in process, without
HTTP (bench/serve_bench.py times the real server against llama-cpp-python's). Each repeat times, back to
back: llama.cpp's own greedy decode of one stream (`Llama.generate`, same threads), the engine's one stream
at temperature 0 and at 0.8, and `clients` streams at once; a single stream's share of the raw speed is
taken per repeat and the median reported, because this machine's speed drifts by 10-20 % over minutes.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PROMPTS = ("The substation's protection relays", "Before work on a feeder starts, the crew",
           "The control room operator saw the frequency fall and", "A transformer's oil temperature rises when")


@dataclass(frozen=True)
class SpeedCheck:
    tokens: int = 64  # generated per request, end-of-generation ignored
    clients: int = 8  # streams at once in the concurrent measurement
    repeats: int = 3
    threads: int | None = None  # llama.cpp threads (default: every core, as `watt serve`)
    n_ctx: int = 512


def _stream_tok_s(chunks) -> tuple[float, int, float]:
    """(decode tok/s after the first token, tokens, seconds to the first token) of one generate() stream."""
    start = time.perf_counter()
    first_at = first_count = None
    last = None
    for chunk in chunks:
        if first_at is None:
            first_at, first_count = time.perf_counter(), chunk.completion_tokens
        last = chunk
    elapsed = time.perf_counter() - first_at
    tokens = last.completion_tokens
    return ((tokens - first_count) / elapsed if elapsed > 0 else 0.0), tokens, first_at - start


def raw_decode_tok_s(llm, prompt: str, tokens: int) -> float:
    """Greedy decode tok/s of a `Llama` after the prompt and first token (bench/serve_bench.py's raw figure too)."""
    from wattlm.engines.lazy_llama import timed_greedy

    _, seconds = timed_greedy(llm, llm.tokenize(prompt.encode()), tokens)
    return (tokens - 1) / seconds


def _concurrent(engine, check: SpeedCheck, repeat: int) -> tuple[float, float]:
    """(aggregate tok/s, median seconds to first token) of `clients` requests sent together."""
    from wattlm.engines.params import SamplingParams

    results: list[tuple[float, int, float]] = [(0.0, 0, 0.0)] * check.clients
    errors: list[BaseException] = []

    def one(index: int) -> None:
        params = SamplingParams(max_tokens=check.tokens, temperature=0.0, ignore_eos=True)
        try:
            results[index] = _stream_tok_s(engine.generate(PROMPTS[(repeat + index) % len(PROMPTS)], params))
        except BaseException as error:  # noqa: BLE001 -- re-raised in the caller's thread
            errors.append(error)

    workers = [threading.Thread(target=one, args=(i,), name=f"speed-check-{i}") for i in range(check.clients)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    return sum(tokens for _, tokens, _ in results) / wall, statistics.median(ttft for _, _, ttft in results)


def measure(gguf: Path, check: SpeedCheck = SpeedCheck()) -> dict:
    """Medians over `check.repeats` of raw decode, the engine's single streams and its concurrent streams."""
    from wattlm.engines.batching.engine import LlamaCppBatchEngine
    from wattlm.engines.compute_thread import compute
    from wattlm.engines.lazy_llama import open_llama, thread_args
    from wattlm.engines.params import SamplingParams

    raw = open_llama(gguf, n_ctx=check.n_ctx, **thread_args(check.threads))
    engine = LlamaCppBatchEngine(gguf, n_ctx=check.n_ctx, n_threads=check.threads,
                                 max_seqs=check.clients, max_waiting=0)
    rows = []
    try:
        # Raw decode runs on the compute thread too, whole, so its timing holds no hand-over between threads
        # (a graph computed on another thread would also slow the engine: see engines/compute_thread.py).
        compute(raw_decode_tok_s, raw, PROMPTS[0], 8)  # pages the weights in; not counted
        list(engine.generate(PROMPTS[0], SamplingParams(max_tokens=8, temperature=0.0)))
        for repeat in range(check.repeats):
            prompt = PROMPTS[repeat % len(PROMPTS)]
            row = {"raw": compute(raw_decode_tok_s, raw, prompt, check.tokens)}
            for name, temperature in (("t0", 0.0), ("t08", 0.8)):
                params = SamplingParams(max_tokens=check.tokens, temperature=temperature, seed=repeat, ignore_eos=True)
                row[name] = _stream_tok_s(engine.generate(prompt, params))[0]
            row["concurrent"], row["ttft"] = _concurrent(engine, check, repeat)
            rows.append(row)
    finally:
        engine.close()
        raw.close()
    median = lambda values: round(statistics.median(values), 1)  # noqa: E731
    return {
        "file": gguf.name, "tokens": check.tokens, "clients": check.clients, "repeats": check.repeats,
        "raw_tok_s": median(r["raw"] for r in rows),
        "single_t0_tok_s": median(r["t0"] for r in rows), "single_t08_tok_s": median(r["t08"] for r in rows),
        "single_t0_pct_of_raw": median(100 * r["t0"] / r["raw"] for r in rows),
        "single_t08_pct_of_raw": median(100 * r["t08"] / r["raw"] for r in rows),
        "concurrent_tok_s": median(r["concurrent"] for r in rows),
        "concurrent_x_single": median(r["concurrent"] / r["t0"] for r in rows),
        "concurrent_ttft_p50_ms": median(1000 * r["ttft"] for r in rows),
    }
