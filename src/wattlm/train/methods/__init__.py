"""Training methods: the table. A new method is one file (a `TrainingMethod` subclass, see base.py)
plus one entry here."""

from __future__ import annotations

from wattlm.errors import WattError
from wattlm.train.methods.base import MethodSettings, StepLoss, TrainingMethod
from wattlm.train.methods.cpt import CptMethod
from wattlm.train.methods.distill import DistillMethod
from wattlm.train.methods.sft import SftMethod

METHODS: dict[str, type[TrainingMethod]] = {"cpt": CptMethod, "sft": SftMethod, "distill": DistillMethod}

__all__ = ["METHODS", "MethodSettings", "StepLoss", "TrainingMethod", "method_class"]


def method_class(name: str) -> type[TrainingMethod]:
    if name not in METHODS:
        raise WattError(f"unknown training method {name!r}: one of {', '.join(METHODS)}")
    return METHODS[name]
