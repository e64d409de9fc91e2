"""Quality gates: a recipe states what a child model must achieve against its parent, or the run fails.

A gate that fails stops the run before export, so a model that forgot its general language or did not
learn its domain is never shipped as a GGUF. Results are kept in the run report either way.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wattlm.errors import WattError


class GateFailed(WattError):
    exit_code = 4


class Gate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: Literal["domain_ppl", "general_ppl"] = Field(description="Score compared between child and parent.")
    max_ratio: float | None = Field(None, gt=0, description="child <= max_ratio x parent (lower is better).")
    max_value: float | None = Field(None, gt=0, description="child <= max_value, whatever the parent scored.")

    @model_validator(mode="after")
    def _one_limit(self) -> Gate:
        if (self.max_ratio is None) == (self.max_value is None):
            raise ValueError("a gate needs exactly one of max_ratio or max_value")
        return self


def check_gates(gates: list[Gate], scores: dict[str, dict[str, float]], child: str = "industry",
                parent: str = "foundation") -> list[dict]:
    """One result per gate: the numbers, the limit, passed or not, and a sentence a person can read."""
    results = []
    for gate in gates:
        label = gate.metric.removesuffix("_ppl")
        got = scores.get(child, {}).get(label)
        base = scores.get(parent, {}).get(label)
        if got is None or (gate.max_ratio is not None and base is None):
            raise WattError(f"gate on {gate.metric} needs the {label} score of {child} and {parent}; "
                            f"add eval.general to the recipe" if label == "general" else f"gate on {gate.metric}: no score")
        limit = gate.max_ratio * base if gate.max_ratio is not None else gate.max_value
        passed = got <= limit
        rule = f"{gate.max_ratio} x {parent} {base:.2f}" if gate.max_ratio is not None else f"{gate.max_value}"
        results.append({
            "metric": gate.metric, "child": got, "parent": base, "limit": round(limit, 4),
            "ratio": round(got / base, 4) if base else None, "passed": passed,
            "message": f"{child} {gate.metric} {got:.2f} {'<=' if passed else '>'} {rule} = {limit:.2f}",
        })
    return results
