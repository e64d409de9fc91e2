"""`EngineSettings.flash_attn` reaches every llama.cpp context an engine makes: the batch scheduler's,
the simple engine's `Llama`, and the scoring and embeddings contexts, so one server's answers, logprobs
and vectors come from the same attention kernels."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from wattlm.errors import WattError

llama_cpp = pytest.importorskip("llama_cpp")


@pytest.mark.parametrize("flash_attn, expected", [(True, "ENABLED"), (False, "DISABLED")])
def test_the_scheduler_asks_llama_cpp_for_the_kernel_explicitly(monkeypatch, flash_attn, expected):
    from wattlm.engines.batching.scheduler import Scheduler

    asked = []

    def init_from_model(model, params):
        asked.append(params.flash_attn_type)
        return None  # no context: the scheduler stops right after asking

    monkeypatch.setattr(llama_cpp, "llama_init_from_model", init_from_model)
    with pytest.raises(WattError, match="could not create a context"):
        Scheduler(SimpleNamespace(handle=None), n_ctx=64, max_seqs=2, max_waiting=0, prefill_chunk=16,
                  n_threads=1, flash_attn=flash_attn)
    assert asked == [getattr(llama_cpp, f"LLAMA_FLASH_ATTN_TYPE_{expected}")]


@pytest.mark.parametrize("flash_attn", [True, False])
def test_lazy_contexts_pass_the_setting_to_llama(monkeypatch, tmp_path, flash_attn):
    from wattlm.engines.lazy_llama import LazyLlama

    class Options(dict):  # the options a context would get; open_llama keeps a weak reference to it
        __hash__ = object.__hash__

    monkeypatch.setattr(llama_cpp, "Llama", lambda **options: Options(options))
    options = LazyLlama(tmp_path / "m.gguf", 64, 1, options=lambda _: {"embedding": True}, flash_attn=flash_attn).get()
    assert options["flash_attn"] is flash_attn and options["embedding"] is True
    assert LazyLlama(tmp_path / "m.gguf", 64, 1).get()["flash_attn"] is False  # Llama's own default


def test_engines_share_a_scoring_context_only_with_the_same_kernels(tmp_path):
    from wattlm.engines.scoring_context import _SHARED, ScoringContext

    gguf = tmp_path / "m.gguf"  # nothing is loaded: the context is made on the first scoring request
    off, on = ScoringContext.acquire(gguf, 64, 1), ScoringContext.acquire(gguf, 64, 1, flash_attn=True)
    again = ScoringContext.acquire(gguf, 64, 1, flash_attn=True)
    try:
        assert on is again and on is not off
        assert off.key != on.key and on._lazy.flash_attn and not off._lazy.flash_attn
    finally:
        for context in (off, on, again):
            context.release()
    assert off.key not in _SHARED and on.key not in _SHARED


# ---- the real SmolLM2: which kernel each context was made with ---------------------------------------


@pytest.fixture
def kernels_asked(monkeypatch) -> list[int]:
    """The `flash_attn_type` of every llama.cpp context made while the test runs (both the scheduler's
    call and `Llama`'s, which goes through the low-level module), each context still made for real."""
    import llama_cpp.llama_cpp as low_level

    real = low_level.llama_init_from_model
    asked: list[int] = []

    def init_from_model(model, params):
        asked.append(params.flash_attn_type)
        return real(model, params)

    monkeypatch.setattr(llama_cpp, "llama_init_from_model", init_from_model)
    monkeypatch.setattr(low_level, "llama_init_from_model", init_from_model)
    return asked


@pytest.mark.integration
@pytest.mark.parametrize("engine", ["batch", "simple"])
@pytest.mark.parametrize("flash_attn", [True, False])
def test_generation_scoring_and_embeddings_use_the_same_kernel(smollm2_path, kernels_asked, engine, flash_attn):
    from wattlm.engines.params import SamplingParams
    from wattlm.engines.table import build_engine

    built = build_engine(smollm2_path, "m", engine, n_ctx=256, max_seqs=2, n_threads=2, flash_attn=flash_attn)
    try:
        assert "".join(chunk.text for chunk in built.generate("Water boils at", SamplingParams(max_tokens=2)))
        built.generate_with_logprobs("Water boils at", SamplingParams(max_tokens=1), top_logprobs=1, echo=True)
        built.embed(["Water boils at"])
    finally:
        built.close()
    expected = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
    assert kernels_asked == [expected] * 3  # generation, scoring, embeddings: three contexts, one kernel
