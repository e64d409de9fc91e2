"""The engine table: every row builds through `from_settings`, has the core protocol's members in the
right shape (issue 13: `close` was a property and `name` a method on the simple engine), and declares
the capabilities serving relies on."""

from __future__ import annotations

import inspect

import pytest

from wattlm.engines.base import Embeddings, JsonOutput, Scoring, Vocabulary
from wattlm.engines.table import ENGINES, EngineSettings, build_engine, check_flash_attn, engine_spec, llama_cpp_engines
from wattlm.errors import WattError


def engine_class(kind: str) -> type:
    module, _, name = ENGINES[kind].engine_class.partition(":")
    return getattr(__import__(module, fromlist=[name]), name)


@pytest.mark.parametrize("kind", list(ENGINES))
def test_every_engine_has_the_core_members_in_the_right_shape(kind):
    cls = engine_class(kind)
    for member in ("name", "context_length"):
        assert isinstance(inspect.getattr_static(cls, member), property), f"{kind}.{member} must be a property"
    for member in ("generate", "tokenize", "close"):
        assert inspect.isfunction(inspect.getattr_static(cls, member)), f"{kind}.{member} must be a method"
    assert isinstance(inspect.getattr_static(cls, "from_settings"), classmethod)


# Method-only capability protocols can be checked on the class, before any model is loaded.
EXPECTED = {
    "batch": {Scoring, Embeddings, Vocabulary, JsonOutput},
    "simple": {Scoring, Embeddings, Vocabulary, JsonOutput},
    "transformers": {Scoring, Embeddings, Vocabulary},
    "vllm": {Scoring, Vocabulary, JsonOutput},
}


@pytest.mark.parametrize("kind", list(ENGINES))
def test_engines_declare_their_capabilities(kind):
    cls = engine_class(kind)
    assert {cap for cap in (Scoring, Embeddings, Vocabulary, JsonOutput) if issubclass(cls, cap)} == EXPECTED[kind]


def test_an_unknown_engine_names_the_choices(tmp_path):
    with pytest.raises(WattError, match="unknown engine 'tgi'; choose one of batch, simple, transformers, vllm"):
        engine_spec("tgi")
    with pytest.raises(WattError, match="unknown engine"):
        build_engine(tmp_path / "m.gguf", "m", "tgi")


def test_settings_are_checked():
    with pytest.raises(ValueError, match="max_seqs"):
        EngineSettings(max_seqs=0)


def test_flash_attention_is_off_unless_asked_and_checked():
    assert EngineSettings().flash_attn is False  # greedy text stays that of the default kernels
    assert EngineSettings(flash_attn=True).flash_attn is True
    with pytest.raises(ValueError, match="flash_attn"):
        EngineSettings(flash_attn="maybe")


@pytest.mark.parametrize("kind", ["transformers", "vllm"])
def test_flash_attention_is_refused_by_engines_without_llama_cpp(tmp_path, kind):
    message = f"--flash-attn on applies to the llama.cpp engines \\(batch, simple\\), not '{kind}'"
    with pytest.raises(WattError, match=message):
        check_flash_attn(kind, True)
    with pytest.raises(WattError, match=message):  # before anything is loaded (there is no model here)
        build_engine(tmp_path / "hf-folder", "m", kind, flash_attn=True)
    check_flash_attn(kind, False)
    assert llama_cpp_engines() == ["batch", "simple"]
    for llama_kind in llama_cpp_engines():
        check_flash_attn(llama_kind, True)
