"""llama.cpp thread settings on this machine: raw single-stream decode of both packaged models with 1 and 2
threads, OpenMP's default wait policy (spinning) and `OMP_WAIT_POLICY=PASSIVE`.

    .venv/bin/python bench/thread_bench.py [--tokens 64] [--repeats 3]

Each setting runs in its own process (the wait policy is read when libgomp loads): `Llama.generate`, greedy,
`n_threads` = `n_threads_batch`, the prompt excluded, `--repeats` continuations of different prompts after
one that pages the weights in; the median tok/s is printed, one markdown row per model. `watt serve`
uses every core the process may run on (`--threads` overrides it): this table is what that choice rests on.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_bench import N_CTX, PROMPTS, gemma_q8_0, packaged_smollm2  # noqa: E402

SETTINGS = [(1, None), (2, None), (1, "PASSIVE"), (2, "PASSIVE")]  # (threads, OMP_WAIT_POLICY)


def decode_speeds(model: str, threads: int, tokens: int, repeats: int) -> list[float]:
    """Run in the child process: tok/s of `repeats` greedy continuations."""
    from llama_cpp import Llama

    llm = Llama(model_path=model, n_ctx=N_CTX, n_threads=threads, n_threads_batch=threads, verbose=False)
    speeds = []
    for run in range(repeats + 1):  # the first pages the weights in
        stream = llm.generate(llm.tokenize(PROMPTS[run % len(PROMPTS)].encode()), temp=0.0, top_k=1)
        next(stream)
        start = time.perf_counter()
        for _ in range(tokens - 1):
            next(stream)
        if run:
            speeds.append((tokens - 1) / (time.perf_counter() - start))
        stream.close()
    llm.close()
    return speeds


def measure(model: Path, threads: int, policy: str | None, tokens: int, repeats: int) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    done = subprocess.run([sys.executable, __file__, "--child", str(model), str(threads), str(tokens), str(repeats)],
                          env=env, capture_output=True, text=True, check=True)
    return statistics.median(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        model, threads, tokens, repeats = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        print(json.dumps(decode_speeds(model, threads, tokens, repeats)))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, {args.tokens} tokens, median of {args.repeats}, load average {os.getloadavg()[0]:.1f}\n")
    header = " | ".join(f"{t} thread{'s' if t > 1 else ''}, {p.lower() if p else 'OpenMP default'}" for t, p in SETTINGS)
    print(f"| model | {header} |\n| --- |{' --- |' * len(SETTINGS)}")
    with tempfile.TemporaryDirectory(prefix="thread-bench-") as workdir:
        for model in (gemma_q8_0(Path(workdir))[0], packaged_smollm2()):
            speeds = [measure(model, threads, policy, args.tokens, args.repeats) for threads, policy in SETTINGS]
            print(f"| {model.name} | " + " | ".join(f"{s:.1f} tok/s" for s in speeds) + " |", flush=True)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
