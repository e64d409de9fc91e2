from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wattlm.shared.config import describe_validation_error


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["cpt", "sft"] = "cpt"
    steps: int = Field(10, ge=1)


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    train: Inner = Inner()


def message(raw: dict, source="recipe.yaml") -> str:
    with pytest.raises(ValidationError) as caught:
        Outer.model_validate(raw)
    return describe_validation_error(caught.value, source)


def test_one_line_names_source_field_allowed_values_and_the_value_given():
    assert message({"name": "x", "train": {"method": "dpo"}}) == (
        "recipe.yaml: field train.method: Input should be 'cpt' or 'sft' (got 'dpo')")
    assert message({"name": "x", "train": {"steps": 0}}, "watt train options") == (
        "watt train options: field train.steps: Input should be greater than or equal to 1 (got 0)")


def test_unknown_missing_and_several_problems():
    assert message({"name": "x", "train": {"stepz": 3}}) == "recipe.yaml: field train.stepz: unknown field"
    assert message({}) == "recipe.yaml: field name: required field is missing"
    assert message({"train": {"method": "dpo", "steps": 0}}).endswith(" [+2 more]")
    assert "\n" not in message({"train": {"method": "dpo", "steps": 0}})
