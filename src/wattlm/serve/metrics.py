"""Prometheus metrics in the text exposition format, hand-rolled (prometheus_client is not a dependency).

An engine with the `Metered` capability (an `EngineMetrics` as its `metrics`, plus `running`,
`waiting` and `counters`) is reported by `/metrics`; engines without it are not listed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from wattlm.engines.base import Metered
from wattlm.engines.metrics import Histogram

if TYPE_CHECKING:
    from wattlm.serve.workers import WorkerPool


def render(engines: Mapping[str, object], pools: Sequence[WorkerPool] = ()) -> str:
    """The exposition text for every engine that keeps metrics, one `model` label per engine, and for
    the worker pools of scoring, embeddings and tokenizer jobs (one `pool` label each)."""
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    measured = {model: engine for model, engine in engines.items() if isinstance(engine, Metered)}
    simple = [
        ("wattlm_requests_total", "counter", "Generation requests admitted.", lambda e: e.metrics.requests),
        ("wattlm_requests_in_flight", "gauge", "Requests being answered (queued or running).", lambda e: e.metrics.in_flight),
        ("wattlm_requests_running", "gauge", "Sequences holding a batch slot.", lambda e: e.running),
        ("wattlm_queue_depth", "gauge", "Requests waiting for a slot.", lambda e: e.waiting),
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
    for name, kind, help_text, value in (
        ("wattlm_pool_jobs_running", "gauge", "Jobs running in a worker pool.", lambda pool: pool.running),
        ("wattlm_pool_jobs_pending", "gauge", "Jobs running or waiting in a worker pool.", lambda pool: pool.pending),
        ("wattlm_pool_jobs_refused_total", "counter", "Jobs refused with 503: the pool's queue was full.",
         lambda pool: pool.refused),
    ):
        family(name, kind, help_text)
        lines.extend(f'{name}{{pool="{_escape(pool.name)}"}} {value(pool)}' for pool in pools)
    return "\n".join(lines) + "\n"


def _counter(engine: Metered, key: str) -> int:
    return engine.counters.get(key, 0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
