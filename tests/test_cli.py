"""The CLI contract: verbs listed, --help everywhere, one-line errors with non-zero exits."""

import subprocess
import sys

import pytest

WATT = [sys.executable, "-m", "wattlm.cli"]
VERBS = ["models", "data", "synth", "train", "eval", "export", "run", "serve", "keys", "lineage", "registry"]


def watt(*args, home=None):
    extra = ["--home", str(home)] if home else []
    return subprocess.run(WATT + list(args) + extra, capture_output=True, text=True, timeout=120)


def test_help_lists_every_verb():
    out = watt("--help")
    assert out.returncode == 0
    for verb in VERBS:
        assert verb in out.stdout


@pytest.mark.parametrize("verb", [["data", "build"], ["train"], ["eval"], ["export"], ["serve"], ["run"],
                                  ["models", "list"], ["models", "show"], ["models", "add"], ["lineage"],
                                  ["registry", "check"]])
def test_every_verb_has_help(verb):
    out = subprocess.run(WATT + verb + ["--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "Usage" in out.stdout


def _one_line_error(out, *needles):
    assert out.returncode != 0
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, out.stderr
    assert "Traceback" not in out.stderr
    for needle in needles:
        assert needle in errors[0]


def test_missing_recipe(tmp_path):
    _one_line_error(watt("run", str(tmp_path / "nope.yaml"), home=tmp_path / "ws"), "recipe not found", "nope.yaml")


def test_malformed_recipe(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: x\ndata: {inputs: [raw]}\ntrain: {steps: -1}\n")
    _one_line_error(watt("run", str(recipe), home=tmp_path / "ws"), str(recipe), "train.steps")


def test_missing_data_input_registers_nothing(tmp_path, tiny_model_dir):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: x\nfoundation: {tiny_model_dir}\ndata: {{inputs: [missing-folder]}}\n")
    watt("models", "add", str(tiny_model_dir), "--name", str(tiny_model_dir), home=tmp_path / "ws")
    _one_line_error(watt("run", str(recipe), home=tmp_path / "ws"), "missing-folder")
    listed = watt("models", "list", "--all", "--json", home=tmp_path / "ws")
    assert '"kind": "dataset"' not in listed.stdout


def test_unknown_model(tmp_path):
    _one_line_error(watt("eval", "--model", "no-such-model", "--text", str(tmp_path), home=tmp_path / "ws"),
                    "no-such-model")
    _one_line_error(watt("lineage", "ghost", home=tmp_path / "ws"), "ghost")


def test_add_rejects_non_model_files(tmp_path):
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a gguf")
    _one_line_error(watt("models", "add", str(fake), home=tmp_path / "ws"), "fake.gguf", "GGUF")
    _one_line_error(watt("models", "add", str(tmp_path / "absent"), home=tmp_path / "ws"), "absent")


def test_data_build_missing_input(tmp_path):
    _one_line_error(watt("data", "build", str(tmp_path / "nothing"), "--out", str(tmp_path / "o"),
                         home=tmp_path / "ws"), "nothing")
    assert not (tmp_path / "o").exists()
