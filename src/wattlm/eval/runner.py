"""Scoring registered models on tasks; every score is stored on the model artifact and reused.

Stored metrics (the one scheme of `eval/stage.py`), for a task of kind `qa` named `grid-qa`:
  `qa:grid-qa:char_f1` (and each other score) -> a number, the stable name compare and gates read;
  `qa:grid-qa` -> {"key", "items", "seconds", "task_hash"}: the cache key the numbers belong to.
The key covers the model's content key, the task's content hash (items, rendered prompts, generation
settings) and the wattlm version, so a rerun with the same inputs loads nothing and recomputes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from wattlm.cache import content_key, fingerprint
from wattlm.errors import WattError
from wattlm.eval.task import Task
from wattlm.registry import Artifact, Registry
from wattlm.shared.timeline import timed


@dataclass
class TaskResult:
    task: str
    kind: str
    scores: dict[str, float]  # stable metric name -> value
    reused: bool
    seconds: float = 0.0
    items: int = 0
    predictions: list[str] = field(default_factory=list)


def cache_key(model: Artifact, task: Task, precision: str = "fp32") -> str:
    # fp32 adds nothing to the key, so scores stored before `precision` existed are still found.
    extra = () if precision == "fp32" else (precision,)
    return fingerprint("eval", content_key(model), task.kind, task.name, task.content_hash(), *extra)


def stored_result(model: Artifact, task: Task, precision: str = "fp32") -> TaskResult | None:
    record = model.metrics.get(f"{task.kind}:{task.name}")
    if not isinstance(record, dict) or record.get("key") != cache_key(model, task, precision):
        return None
    prefix = f"{task.kind}:{task.name}:"
    scores = {k: v for k, v in model.metrics.items() if k.startswith(prefix)}
    if not scores:
        return None
    return TaskResult(task.name, task.kind, scores, True, record.get("seconds", 0.0), record.get("items", 0))


def _load(registry: Registry, model: Artifact):
    from wattlm.models.hf import load_causal_lm, load_tokenizer
    from wattlm.models.store import hf_dir

    with timed(f"load {model.name}"):
        folder = hf_dir(registry, model)
        return load_causal_lm(folder), load_tokenizer(folder)


def evaluate_model(registry: Registry, model: Artifact, tasks: Sequence[Task], *,
                   say: Callable[[str], None] = lambda msg: None, loader=_load,
                   precision: str = "fp32") -> list[TaskResult]:
    """Each task's scores for `model`: stored ones reused, the rest computed with one model load, under
    `precision` (`bf16`: bf16 autocast, shared/precision.py)."""
    results: list[TaskResult | None] = [stored_result(model, t, precision) for t in tasks]
    if all(r is not None for r in results):
        return results  # type: ignore[return-value]
    from wattlm.eval.stage import scores_lock

    with scores_lock(registry, model):  # a second run scoring this model reads what the first stored
        model = registry.get(model.id)
        return _evaluate(registry, model, tasks, say, loader, precision)


def _evaluate(registry: Registry, model: Artifact, tasks: Sequence[Task], say: Callable[[str], None],
              loader, precision: str) -> list[TaskResult]:
    from wattlm.shared.precision import scoring_precision

    results: list[TaskResult | None] = [stored_result(model, t, precision) for t in tasks]
    missing = [i for i, r in enumerate(results) if r is None]
    if missing:
        lm, tokenizer = loader(registry, model)
        for i in missing:
            task = tasks[i]
            say(f"{model.name}: {task.kind} {task.name} ({task.size} items)")
            start = time.perf_counter()
            with timed(f"{task.kind} {task.name} ({model.name})"), scoring_precision(precision):
                raw = task.evaluate(lm, tokenizer)
            seconds = round(time.perf_counter() - start, 2)
            scores = {task.metric_name(k): round(v, 4) for k, v in raw.items()}
            record = {"key": cache_key(model, task, precision), "task_hash": task.content_hash(), "items": task.size,
                      "seconds": seconds}
            registry.add_metrics(model.id, {**scores, f"{task.kind}:{task.name}": record})
            results[i] = TaskResult(task.name, task.kind, scores, False, seconds, task.size,
                                    list(getattr(task, "predictions", [])))
    return results  # type: ignore[return-value]


def parent_model(registry: Registry, model: Artifact) -> Artifact:
    """The model `model` was trained from (its first parent of kind model)."""
    for parent_id, _ in model.parents:
        parent = registry.get(parent_id)
        if parent.kind == "model":
            return parent
    raise WattError(f"model {model.name} ({model.id}) has no parent model in the registry")


def evaluate_with_parent(registry: Registry, model: Artifact, tasks: Sequence[Task], *,
                         parent: Artifact | None = None, say: Callable[[str], None] = lambda msg: None,
                         loader=_load) -> dict[str, dict[str, float]]:
    """Scores of the model and of its parent on the same tasks: {"child": {...}, "parent": {...}}."""
    parent = parent or parent_model(registry, model)
    scores: dict[str, dict[str, float]] = {}
    for role, art in (("parent", parent), ("child", model)):
        results = evaluate_model(registry, art, tasks, say=say, loader=loader)
        scores[role] = {k: v for r in results for k, v in r.scores.items()}
    return scores
