"""Prometheus metrics in the text exposition format, hand-rolled (prometheus_client is not a dependency).

An engine with the `Metered` capability (an `EngineMetrics` as its `metrics`, plus `running`,
`waiting` and `counters`) is reported by `/metrics`; engines without it are not listed.

A model served by Ray Serve replicas (`watt serve --replicas N`) is reported twice: its `wattlm_*`
series are the ingress's view of the whole model (as for a local engine), and `wattlm_replica_*`
series, labelled `replica` as well, are each replica's own engine figures, asked of every replica at
each scrape (bounded by `metrics_timeout`). Separate names, so that `sum()` over a family never counts a
request twice. `wattlm_replicas_missing` counts the replicas left out of a scrape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from wattlm.engines.base import Metered
from wattlm.engines.metrics import Histogram
from wattlm.serve.replicas.client import ReplicatedEngine

if TYPE_CHECKING:
    from wattlm.serve.workers import WorkerPool

_Family = tuple[str, str, str, Callable[[Any], object]]
# (name without the prefix, kind, help, value of a Metered engine)
_SIMPLE: tuple[_Family, ...] = (
    ("requests_total", "counter", "Generation requests admitted.", lambda e: e.metrics.requests),
    ("requests_in_flight", "gauge", "Requests being answered (queued or running).", lambda e: e.metrics.in_flight),
    ("requests_running", "gauge", "Sequences holding a batch slot.", lambda e: e.running),
    ("queue_depth", "gauge", "Requests waiting for a slot.", lambda e: e.waiting),
    ("prompt_tokens_total", "counter", "Prompt tokens admitted.", lambda e: _counter(e, "prompt_tokens")),
    ("prompt_tokens_reused_total", "counter", "Prompt tokens served from the prefix cache.",
     lambda e: _counter(e, "reused_prompt_tokens")),
    ("generation_tokens_total", "counter", "Tokens generated.", lambda e: _counter(e, "generated_tokens")),
    ("batch_steps_total", "counter", "llama_decode batches run.", lambda e: _counter(e, "steps")),
)
_HISTOGRAMS = (
    ("time_to_first_token_seconds", "ttft", "Time from arrival to the first generated token."),
    ("inter_token_latency_seconds", "itl", "Time between consecutive generated tokens."),
)


async def exposition(engines: Mapping[str, object], pools: Sequence[WorkerPool] = ()) -> str:
    """`render` for the `/metrics` route: off the event loop when a model has replicas, since asking them
    waits on Ray (up to `metrics_timeout`) and the loop must keep streaming other answers meanwhile."""
    if any(isinstance(engine, ReplicatedEngine) for engine in engines.values()):
        return await asyncio.to_thread(render, engines, pools)
    return render(engines, pools)


def render(engines: Mapping[str, object], pools: Sequence[WorkerPool] = ()) -> str:
    """The exposition text for every engine that keeps metrics, one `model` label per engine, each replica
    of a replicated model (`model` and `replica` labels), and the worker pools of scoring, embeddings and
    tokenizer jobs (one `pool` label each)."""
    lines: list[str] = []
    measured = [(f'model="{_escape(model)}"', engine) for model, engine in engines.items()
                if isinstance(engine, Metered)]
    _engine_families(lines, "wattlm_", "", measured)
    replicated = {model: engine for model, engine in engines.items() if isinstance(engine, ReplicatedEngine)}
    if replicated:
        _replica_families(lines, replicated)
    for name, kind, help_text, value in (
        ("wattlm_pool_jobs_running", "gauge", "Jobs running in a worker pool.", lambda pool: pool.running),
        ("wattlm_pool_jobs_pending", "gauge", "Jobs running or waiting in a worker pool.", lambda pool: pool.pending),
        ("wattlm_pool_jobs_refused_total", "counter", "Jobs refused with 503: the pool's queue was full.",
         lambda pool: pool.refused),
    ):
        _family(lines, name, kind, help_text)
        lines.extend(f'{name}{{pool="{_escape(pool.name)}"}} {value(pool)}' for pool in pools)
    return "\n".join(lines) + "\n"


def _engine_families(lines: list[str], prefix: str, scope: str, labelled: Sequence[tuple[str, Any]]) -> None:
    """Every engine family named `prefix` + name, one series per (labels, Metered engine); `scope` is put
    before each help text."""
    for name, kind, help_text, value in _SIMPLE:
        _family(lines, prefix + name, kind, scope + help_text)
        lines.extend(f"{prefix}{name}{{{labels}}} {value(engine)}" for labels, engine in labelled)
    for name, attribute, help_text in _HISTOGRAMS:
        _family(lines, prefix + name, "histogram", scope + help_text)
        for labels, engine in labelled:
            _histogram(lines, prefix + name, labels, getattr(engine.metrics, attribute))


def _replica_families(lines: list[str], replicated: Mapping[str, ReplicatedEngine]) -> None:
    """Each replica's engine figures, and per model how many replicas answered or were left out."""
    labelled: list[tuple[str, Any]] = []
    counts: list[tuple[str, int, int]] = []
    for model, engine in replicated.items():
        answered, missing = engine.replica_figures()
        counts.append((model, len(answered), missing))
        labelled.extend((f'model="{_escape(model)}",replica="{_escape(str(row["replica"]))}"', _as_engine(row))
                        for row in answered if "ttft" in row)  # a replica's engine without metrics: none
    _engine_families(lines, "wattlm_replica_", "One replica's engine: ", labelled)
    _family(lines, "wattlm_replicas_answering", "gauge", "Replicas whose figures are in this scrape.")
    lines.extend(f'wattlm_replicas_answering{{model="{_escape(model)}"}} {answered}' for model, answered, _ in counts)
    _family(lines, "wattlm_replicas_missing", "gauge",
            "Replicas that did not answer this scrape in time (dead, starting, or every slot taken).")
    lines.extend(f'wattlm_replicas_missing{{model="{_escape(model)}"}} {missing}' for model, _, missing in counts)


def _as_engine(row: dict[str, Any]) -> SimpleNamespace:
    """A replica's `figures()` shaped as the Metered engine the families read."""

    def histogram(snapshot: dict[str, Any]) -> Histogram:
        restored = Histogram(tuple(snapshot["buckets"]))
        restored.counts, restored.total = list(snapshot["counts"]), snapshot["total"]
        return restored

    metrics = SimpleNamespace(requests=row["requests"], in_flight=row["in_flight"], ttft=histogram(row["ttft"]),
                              itl=histogram(row["itl"]))
    return SimpleNamespace(metrics=metrics, running=row["running"], waiting=row["waiting"], counters=row["counters"])


def _family(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")


def _histogram(lines: list[str], name: str, labels: str, histogram: Histogram) -> None:
    cumulative = 0
    for bound, count in zip((*histogram.buckets, float("inf")), histogram.counts, strict=True):
        cumulative += count
        edge = "+Inf" if bound == float("inf") else repr(bound)
        lines.append(f'{name}_bucket{{{labels},le="{edge}"}} {cumulative}')
    lines.append(f"{name}_sum{{{labels}}} {histogram.total}")
    lines.append(f"{name}_count{{{labels}}} {cumulative}")


def _counter(engine: Metered, key: str) -> int:
    return engine.counters.get(key, 0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
