from __future__ import annotations

from pathlib import Path

import pytest

from wattlm.errors import NotFound, WattError
from wattlm.recipe import load_recipe

REPO = Path(__file__).resolve().parents[1]


# Recipes sit at the top of each example folder; eval/ holds lm-eval task YAML, not recipes.
@pytest.mark.parametrize("path", sorted(REPO.glob("examples/*/*.yaml")), ids=lambda p: p.parent.name + "/" + p.name)
def test_every_example_recipe_parses(path):
    recipe = load_recipe(path)
    for data_input in recipe.data.inputs:
        assert recipe.resolve(data_input).exists(), f"{path}: data input {data_input} missing"


def _write(tmp_path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_wrong_type_names_file_and_field(tmp_path):
    path = _write(tmp_path, "name: x\ndata: {inputs: [raw]}\ntrain: {steps: zero}\n")
    with pytest.raises(WattError) as err:
        load_recipe(path)
    message = str(err.value)
    assert str(path) in message and "train.steps" in message and "'zero'" in message
    assert "\n" not in message


def test_unknown_and_missing_fields(tmp_path):
    with pytest.raises(WattError, match=r"field train\.stepz: unknown field"):
        load_recipe(_write(tmp_path, "name: x\ndata: {inputs: [raw]}\ntrain: {stepz: 3}\n"))
    with pytest.raises(WattError, match=r"field data: required field is missing"):
        load_recipe(_write(tmp_path, "name: x\n"))
    with pytest.raises(WattError, match=r"export\.quants.*unknown quant 'q3_xl'"):
        load_recipe(_write(tmp_path, "name: x\ndata: {inputs: [raw]}\nexport: {quants: [q3_xl]}\n"))


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(WattError, match="not valid YAML"):
        load_recipe(_write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(WattError, match="expected a mapping"):
        load_recipe(_write(tmp_path, "- just\n- a list\n"))
    with pytest.raises(NotFound, match="recipe not found"):
        load_recipe(tmp_path / "absent.yaml")


def test_relative_paths_resolve_against_recipe_folder(tmp_path):
    recipe = load_recipe(_write(tmp_path, "name: x\ndata: {inputs: [raw]}\n"))
    assert recipe.resolve(recipe.data.inputs[0]) == (tmp_path / "raw").resolve()
