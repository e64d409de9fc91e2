"""Prometheus metrics in the text exposition format, hand-rolled (prometheus_client is not a dependency).

An engine that keeps an `EngineMetrics` as its `metrics` attribute is reported by `/metrics`; the
latency histograms are observed by the request threads, the token and queue figures come from the
engine itself (`running`, `waiting`, `counters`).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Mapping

# Seconds. CPU serving: first tokens take tens of ms to seconds, later tokens 5-500 ms.
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ITL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value


class EngineMetrics:
    """Request and latency figures of one engine, safe to update from many request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.in_flight = 0
        self.ttft = Histogram(TTFT_BUCKETS)
        self.itl = Histogram(ITL_BUCKETS)

    def started(self) -> None:
        with self._lock:
            self.requests += 1
            self.in_flight += 1

    def ended(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def token(self, seconds_since_previous: float, first: bool) -> None:
        """A token reached its request: `first` ones measure TTFT (from arrival), others ITL."""
        with self._lock:
            (self.ttft if first else self.itl).observe(seconds_since_previous)


def render(engines: Mapping[str, object]) -> str:
    """The exposition text for every engine that keeps metrics, one `model` label per engine."""
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    measured = {model: engine for model, engine in engines.items() if isinstance(getattr(engine, "metrics", None), EngineMetrics)}
    simple = [
        ("wattlm_requests_total", "counter", "Generation requests admitted.", lambda e: e.metrics.requests),
        ("wattlm_requests_in_flight", "gauge", "Requests being answered (queued or running).", lambda e: e.metrics.in_flight),
        ("wattlm_requests_running", "gauge", "Sequences holding a batch slot.", lambda e: getattr(e, "running", 0)),
        ("wattlm_queue_depth", "gauge", "Requests waiting for a slot.", lambda e: getattr(e, "waiting", 0)),
        ("wattlm_prompt_tokens_total", "counter", "Prompt tokens admitted.", lambda e: _counter(e, "prompt_tokens")),
        ("wattlm_prompt_tokens_reused_total", "counter", "Prompt tokens served from the prefix cache.",
         lambda e: _counter(e, "reused_prompt_tokens")),
        ("wattlm_generation_tokens_total", "counter", "Tokens generated.", lambda e: _counter(e, "generated_tokens")),
        ("wattlm_batch_steps_total", "counter", "llama_decode batches run.", lambda e: _counter(e, "steps")),
    ]
    for name, kind, help_text, value in simple:
        family(name, kind, help_text)
        lines.extend(f'{name}{{model="{_escape(model)}"}} {value(engine)}' for model, engine in measured.items())
    for name, attribute, help_text in (
        ("wattlm_time_to_first_token_seconds", "ttft", "Time from arrival to the first generated token."),
        ("wattlm_inter_token_latency_seconds", "itl", "Time between consecutive generated tokens."),
    ):
        family(name, "histogram", help_text)
        for model, engine in measured.items():
            label = f'model="{_escape(model)}"'
            histogram: Histogram = getattr(engine.metrics, attribute)
            cumulative = 0
            for bound, count in zip((*histogram.buckets, float("inf")), histogram.counts, strict=True):
                cumulative += count
                edge = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(f'{name}_bucket{{{label},le="{edge}"}} {cumulative}')
            lines.append(f"{name}_sum{{{label}}} {histogram.total}")
            lines.append(f"{name}_count{{{label}}} {cumulative}")
    return "\n".join(lines) + "\n"


def _counter(engine: object, key: str) -> int:
    return getattr(engine, "counters", {}).get(key, 0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
