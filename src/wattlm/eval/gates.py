"""Quality gates: a recipe states what a child model must achieve against its parent, or the run fails.

A gate that fails stops the run before export, so a model that forgot its general language, did not
learn its domain, or answers worse than its parent is never shipped. Results are kept in the run report
either way. A gate names a metric: the run's perplexities (`domain_ppl`, `general_ppl`) or a task score
as `<kind>_<score>` (e.g. `qa_char_f1`), whose direction its task class declares (`eval/tasks.py`).
Lower-is-better metrics take `max_ratio` / `max_value`; higher-is-better ones `min_delta` (child >=
parent + delta) / `min_value`. Which models are child and parent is the caller's choice (industry vs
foundation, task vs industry). A gate with `baseline` compares two scores of the child itself instead
of child and parent: `{metric: rag_char_f1, baseline: rag_closed_char_f1, min_delta: 20}` holds the
grounded answers to at least 20 points over the same model's closed-book answers.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wattlm.errors import WattError
from wattlm.eval.task import Metric, lower
from wattlm.eval.tasks import TASKS, gate_metrics

# The run's own perplexities (scores["domain"], scores["general"]), beside the task scores.
RUN_METRICS = {"domain_ppl": lower("perplexity on the corpus's held-out split"),
               "general_ppl": lower("perplexity on the recipe's general text (forgetting check)")}


def known_metrics() -> dict[str, Metric]:
    return {**RUN_METRICS, **gate_metrics()}


class GateFailed(WattError):
    exit_code = 4


class Gate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str = Field(description="Score compared: domain_ppl, general_ppl, or a task score <kind>_<score> "
                        f"({', '.join(gate_metrics())}).")
    task: str | None = Field(None, description="Eval set a task score comes from (needed when several sets have it).")
    baseline: str | None = Field(None, description="Compare with this other task score of the same model (same "
                                 "direction, same eval set) instead of the parent's `metric`, e.g. rag_closed_char_f1.")
    max_ratio: float | None = Field(None, gt=0, description="child <= max_ratio x parent (perplexity).")
    max_value: float | None = Field(None, gt=0, description="child <= max_value, whatever the parent scored (perplexity).")
    min_delta: float | None = Field(None, description="child >= parent + min_delta points (task scores).")
    min_value: float | None = Field(None, ge=0, description="child >= min_value points, whatever the parent scored (task scores).")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        if metric not in known_metrics():
            raise ValueError(f"unknown metric {metric!r}; allowed: {', '.join(known_metrics())}")
        return metric

    @model_validator(mode="after")
    def _one_limit(self) -> Gate:
        limits = {"max_ratio": self.max_ratio, "max_value": self.max_value, "min_delta": self.min_delta,
                  "min_value": self.min_value}
        given = [name for name, value in limits.items() if value is not None]
        allowed = ("max_ratio", "max_value") if self.lower_is_better else ("min_delta", "min_value")
        if len(given) != 1 or given[0] not in allowed:
            raise ValueError(f"a gate on {self.metric} needs exactly one of {' or '.join(allowed)}")
        if self.task is not None and not self.on_task_score:
            raise ValueError(f"task only applies to task scores, not {self.metric}")
        if self.baseline is not None:
            metrics = known_metrics()
            if self.baseline not in gate_metrics() or not self.on_task_score:
                raise ValueError(f"baseline {self.baseline!r} must be a task score like the metric; allowed: "
                                 f"{', '.join(gate_metrics())}")
            if metrics[self.baseline].higher_is_better != metrics[self.metric].higher_is_better:
                raise ValueError(f"baseline {self.baseline} and {self.metric} disagree on which direction is better")
        return self

    @property
    def on_task_score(self) -> bool:
        """A task score (stored by `watt eval run` / eval.tasks), not one of the run's perplexities."""
        return self.metric not in RUN_METRICS

    @property
    def lower_is_better(self) -> bool:
        return not known_metrics()[self.metric].higher_is_better

    def task_score(self, metric: str | None = None) -> tuple[str, str]:
        """(kind, score) of a task-score metric: `qa_char_f1` -> ("qa", "char_f1")."""
        metric = metric or self.metric
        kind = next(k for k in TASKS if metric.startswith(f"{k}_") and metric[len(k) + 1:] in TASKS[k].metrics)
        return kind, metric[len(kind) + 1:]


def _lookup(gate: Gate, role_scores: dict[str, float], role: str, metric: str | None = None) -> float | None:
    """A role's value for the gate's metric (or `metric`, its baseline): `domain`/`general` perplexity,
    or a stored task score."""
    if not gate.on_task_score:
        return role_scores.get(gate.metric.removesuffix("_ppl"))
    kind, score = gate.task_score(metric)
    matches = {k: v for k, v in role_scores.items() if k.startswith(f"{kind}:") and k.endswith(f":{score}")
               and (gate.task is None or k == f"{kind}:{gate.task}:{score}")}
    if len(matches) > 1:
        raise WattError(f"gate on {gate.metric}: {role} has it for several eval sets ({', '.join(sorted(matches))}); "
                        "name one with task: <set name>")
    return next(iter(matches.values()), None)


def _missing(gate: Gate, role: str) -> WattError:
    if gate.metric == "general_ppl":
        return WattError(f"gate on {gate.metric} needs the general score of {role}; add eval.general to the recipe")
    where = f" on eval set {gate.task!r}" if gate.task else ""
    return WattError(f"gate on {gate.metric}: no {gate.metric} score{where} for {role}")


def check_gates(gates: list[Gate], scores: dict[str, dict[str, float]], child: str = "industry",
                parent: str = "foundation") -> list[dict]:
    """One result per gate: the numbers, the limit, passed or not, and a sentence a person can read."""
    results = []
    parent_role = parent
    for gate in gates:
        got = _lookup(gate, scores.get(child, {}), child)
        needs_parent = gate.max_ratio is not None or gate.min_delta is not None
        if gate.baseline is not None:  # the child's own other score (grounded vs closed-book)
            parent = f"{child} {gate.baseline}"
            base = _lookup(gate, scores.get(child, {}), child, gate.baseline)
        else:
            parent = parent_role
            base = _lookup(gate, scores.get(parent, {}), parent)  # shown in the report even when not needed
        if got is None:
            raise _missing(gate, child)
        if needs_parent and base is None:
            raise _missing(gate, parent)
        if gate.max_ratio is not None:
            limit = gate.max_ratio * base
            rule = f"{gate.max_ratio} x {parent} {base:.2f}"
        elif gate.max_value is not None:
            limit, rule = gate.max_value, f"{gate.max_value}"
        elif gate.min_delta is not None:
            limit, rule = base + gate.min_delta, f"{parent} {base:.2f} + {gate.min_delta:g}"
        else:
            limit, rule = gate.min_value, f"{gate.min_value:g}"
        passed = got <= limit if gate.lower_is_better else got >= limit
        ok, bad = ("<=", ">") if gate.lower_is_better else (">=", "<")
        results.append({
            "metric": gate.metric, "task": gate.task, "baseline": gate.baseline, "child": got, "parent": base, "limit": round(limit, 4),
            "ratio": round(got / base, 4) if base else None, "delta": round(got - base, 4) if base is not None else None,
            "passed": passed, "message": f"{child} {gate.metric} {got:.2f} {ok if passed else bad} {rule} = {limit:.2f}",
        })
    return results
