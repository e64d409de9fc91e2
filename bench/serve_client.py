"""The serving benchmarks' load generator: streaming OpenAI completions from concurrent clients, with the
metrics of vLLM's `bench serve` (TTFT, TPOT, ITL, aggregate output tokens/s). Used by serve_bench.py,
replicas_bench.py and gpu_check.py.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import time
from dataclasses import dataclass, field

PROMPTS = [  # plain-text openings the model continues for a long time
    "The history of electricity began", "In the small village by the river, the old miller",
    "A transformer is a device that", "The first step in planning a power grid is",
    "Once upon a time, in a kingdom far away,", "The engineer opened the control room door and",
    "Solar panels convert sunlight into", "During the winter storm, the substation",
    "The recipe for a good bread starts with", "Copper is used in electrical wiring because",
    "The ship left the harbour at dawn, and", "Wind turbines work by", "The library was quiet except for",
    "Batteries store energy in", "The mountain trail was steep, so we", "Hydroelectric dams generate power by",
]



@dataclass
class Result:
    ttft: float = 0.0
    latency: float = 0.0
    tokens: int = 0  # output tokens (usage, or the text re-tokenized)
    text: str = ""
    gaps: list[float] = field(default_factory=list)  # ITL: gaps between successive streamed chunks
    error: str | None = None


async def one_request(client, base_url: str, prompt: str, max_tokens: int, temperature: float, seed: int) -> Result:
    # `seed` keeps temperature-0.8 runs comparable from one repeat to the next; greedy ignores it.
    body = {"model": "bench", "prompt": prompt, "max_tokens": max_tokens, "temperature": temperature, "seed": seed,
            "stream": True, "stream_options": {"include_usage": True}}
    result, start = Result(), time.perf_counter()
    last, pieces, usage_tokens = start, [], None
    try:
        async with client.stream("POST", f"{base_url}/v1/completions", json=body) as response:
            if response.status_code != 200:
                result.error = f"HTTP {response.status_code}"
                return result
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    result.error = chunk["error"].get("message", "error")
                    return result
                if chunk.get("usage"):
                    usage_tokens = chunk["usage"]["completion_tokens"]
                if not chunk.get("choices") or not chunk["choices"][0].get("text"):
                    continue
                now = time.perf_counter()
                if not pieces:
                    result.ttft = now - start
                else:
                    result.gaps.append(now - last)
                last = now
                pieces.append(chunk["choices"][0]["text"])
    except Exception as error:  # noqa: BLE001 -- counted, the benchmark goes on
        result.error = type(error).__name__
        return result
    result.latency = time.perf_counter() - start
    result.text = "".join(pieces)
    result.tokens = usage_tokens if usage_tokens is not None else count_tokens(result.text)
    return result


_VOCAB = {}


def count_tokens(text: str) -> int:
    """Output tokens of a server that streams no usage: its text re-tokenized, as vLLM's bench does."""
    if "llm" not in _VOCAB:
        from llama_cpp import Llama

        _VOCAB["llm"] = Llama(model_path=_VOCAB["path"], vocab_only=True, verbose=False)
    return len(_VOCAB["llm"].tokenize(text.encode(), add_bos=False, special=False)) if text else 0


async def run_level(base_url: str, clients: int, rounds: int, max_tokens: int, temperature: float = 0.0) -> dict:
    import httpx

    async def client_loop(index: int) -> list[Result]:
        results = []
        for round_ in range(rounds):
            prompt = PROMPTS[(index * rounds + round_) % len(PROMPTS)]
            results.append(await one_request(http, base_url, prompt, max_tokens, temperature, index * rounds + round_))
        return results

    limits = httpx.Limits(max_connections=clients + 2)
    async with httpx.AsyncClient(timeout=600, limits=limits) as http:
        start = time.perf_counter()
        per_client = await asyncio.gather(*(client_loop(index) for index in range(clients)))
        wall = time.perf_counter() - start
    results = [result for batch in per_client for result in batch]
    good = [result for result in results if result.error is None and result.tokens > 0]
    tpots = [(r.latency - r.ttft) / (r.tokens - 1) for r in good if r.tokens > 1]
    gaps = [gap for r in good for gap in r.gaps]
    return {
        "clients": clients, "requests": len(results), "errors": len(results) - len(good),
        "tokens": sum(r.tokens for r in good), "tok_s": sum(r.tokens for r in good) / wall,
        "ttft_p50": pct(r.ttft for r in good)[0], "ttft_p95": pct(r.ttft for r in good)[1],
        "tpot_mean": statistics.fmean(tpots) if tpots else float("nan"),
        "tpot_p50": pct(tpots)[0], "tpot_p95": pct(tpots)[1],
        "itl_p50": pct(gaps)[0], "itl_p95": pct(gaps)[1],
    }


def pct(values) -> tuple[float, float]:
    ordered = sorted(values)
    if not ordered:
        return float("nan"), float("nan")
    at = lambda q: ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]  # noqa: E731
    return at(0.50), at(0.95)


def wait_ready(base_url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/v1/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server at {base_url} not ready after {timeout} s")
