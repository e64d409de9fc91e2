"""bench/llama_ceiling.py: llama.cpp's batched decode with the batch engine's context settings, small."""

import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def ceiling_module():
    sys.path.insert(0, str(BENCH))  # the bench scripts import each other as top-level modules
    try:
        from tests.data.helpers import load_bench

        yield load_bench("llama_ceiling")
    finally:
        sys.path.remove(str(BENCH))


def test_ceiling_decodes_every_sequence_each_step_with_the_engine_settings(ceiling_module, smollm2_path, monkeypatch):
    import llama_cpp

    created = []
    real_init = llama_cpp.llama_init_from_model

    def spy(model, params):
        created.append((params.n_seq_max, params.kv_unified, params.n_batch, params.flash_attn_type, params.n_threads))
        return real_init(model, params)

    monkeypatch.setattr(llama_cpp, "llama_init_from_model", spy)
    ceiling = ceiling_module.BatchCeiling(smollm2_path, 256, 4, 2, False, ["One two three", "Four five"])
    try:
        row = ceiling.run(3, 1, 5, 0.0)
        assert (row["clients"], row["tokens"], row["errors"]) == (3, 15, 0)
        assert row["tok_s"] > 0 and row["step_ms"] > 0
        with pytest.raises(ValueError, match="max_seqs 4"):
            ceiling.run(5, 1, 2, 0.0)
    finally:
        ceiling.close()
    # One stream per sequence, one micro-batch per step (4 decode tokens + a 128-token chunk), flash off.
    assert created == [(4, False, 4 + 128, llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED, 2)]
