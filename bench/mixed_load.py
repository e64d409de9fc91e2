"""Generation speed once other llama.cpp work has run in the same process, this tree against an earlier one.

One greedy stream through `LlamaCppBatchEngine` (in process, no HTTP), timed alone, after one logprobs
request, after one embeddings request made from a thread that stays alive (as a server's worker threads
do), and beside a second engine that has decoded once; plus the logprobs request's own speed. Before the
compute thread (engines/compute_thread.py) each of those left a second OpenMP pool in the process and
generation slowed for as long as it lived. `--against REV` runs the same scenario on a git worktree of REV,
alternating with this tree, `--rounds` times per model:

    .venv/bin/python bench/mixed_load.py --against 337a443

Prints one JSON line per run (with the process's CPU ms per generated token of each case) and a table of
medians. Each run is its own process (a fresh interpreter).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROMPT = "The substation's protection relays"
CASES = ("alone", "after_scoring", "after_embed", "beside_second_engine", "scoring_tok_s")


def _scenario(model: Path) -> dict:
    """Runs inside the child process, on whichever tree PYTHONPATH names."""
    from wattlm.engines.batching.engine import LlamaCppBatchEngine
    from wattlm.engines.params import SamplingParams

    greedy = SamplingParams(max_tokens=64, temperature=0.0, ignore_eos=True)

    def tok_s(engine) -> float:
        first = None
        for chunk in engine.generate(PROMPT, greedy):
            if first is None:
                first, counted = time.perf_counter(), chunk.completion_tokens
            last = chunk
        return (last.completion_tokens - counted) / (time.perf_counter() - first)

    cpu = {}  # CPU seconds of the whole process per generated token, beside each case's wall-clock tok/s

    def median(engine, case: str) -> float:
        start = time.process_time()
        speeds = [tok_s(engine) for _ in range(3)]
        cpu[f"{case}_cpu_ms_per_token"] = round(1000 * (time.process_time() - start) / (3 * (greedy.max_tokens - 1)), 2)
        return round(statistics.median(speeds), 1)

    out = {}
    engine = LlamaCppBatchEngine(model, n_ctx=512, n_threads=2, max_seqs=8, max_waiting=0)
    tok_s(engine)  # pages the weights in
    out["alone"] = median(engine, "alone")
    start = time.perf_counter()
    engine.generate_with_logprobs(PROMPT, SamplingParams(max_tokens=128, temperature=0.8, ignore_eos=True, seed=1),
                                  5, echo=False)
    out["scoring_tok_s"] = round(128 / (time.perf_counter() - start), 1)
    out["after_scoring"] = median(engine, "after_scoring")
    embedded, leave = threading.Event(), threading.Event()

    def worker() -> None:
        engine.embed(["the grid carries power"])
        embedded.set()
        leave.wait()

    thread = threading.Thread(target=worker)
    thread.start()
    embedded.wait()
    out["after_embed"] = median(engine, "after_embed")
    second = LlamaCppBatchEngine(model, n_ctx=512, n_threads=2, max_seqs=8, max_waiting=0)
    tok_s(second)
    out["beside_second_engine"] = median(engine, "beside_second_engine")
    second.close()
    leave.set()
    thread.join()
    engine.close()
    return {**out, **cpu}


def _run(src: Path, model: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", str(model)], env={**os.environ, "PYTHONPATH": str(src)},
                          capture_output=True, text=True, timeout=600, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", default=None, help="git revision to compare with (a worktree of it is made)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", action="append", type=Path, help="GGUF files (default: the packaged SmolLM2)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_scenario(args.child)))
        return
    sys.path.insert(0, str(REPO))
    from tests.conftest import smollm2_gguf

    models = args.model or [smollm2_gguf()]
    with tempfile.TemporaryDirectory(prefix="mixed-load-") as scratch:
        trees = {"this tree": REPO / "src"}
        if args.against:
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", f"{scratch}/tree", args.against],
                           check=True, capture_output=True)
            trees = {args.against: Path(scratch) / "tree" / "src", **trees}
        try:
            rows: dict[tuple[str, str], list[dict]] = {}
            for round_ in range(args.rounds):
                for model in models:
                    for name, src in trees.items():
                        result = _run(src, model)
                        rows.setdefault((model.name, name), []).append(result)
                        print(json.dumps({"round": round_ + 1, "model": model.name, "tree": name, **result}), flush=True)
        finally:
            if args.against:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", f"{scratch}/tree"],
                               capture_output=True)
    print("\n| model | tree | " + " | ".join(CASES) + " |\n| --- | --- |" + " --- |" * len(CASES))
    for (model, tree), results in rows.items():
        cells = [f"{statistics.median(r[c] for r in results):.1f}" for c in CASES]
        print(f"| {model} | {tree} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
