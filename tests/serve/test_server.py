"""The app behind a real uvicorn on loopback: start, answer, notice a departed client, stop."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from itertools import islice

import httpx
import pytest

from wattlm.engines.llamacpp import LlamaCppEngine
from wattlm.engines.params import GenerationChunk, SamplingParams
from wattlm.errors import NotFound
from wattlm.serve import create_app, running_server

from .fakes import FakeEngine


class EndlessEngine(FakeEngine):
    """Writes "tick" until it is closed; records that it was."""

    def __init__(self) -> None:
        super().__init__(name="endless")
        self.aborted = threading.Event()
        self.release = threading.Event()  # paces the producer so it cannot race far ahead

    def generate(self, prompt: str, params: SamplingParams) -> Iterator[GenerationChunk]:
        produced = 0
        try:
            while True:
                produced += 1
                yield GenerationChunk(" tick", None, 1, produced)
                self.release.wait(0.01)
        finally:
            self.aborted.set()


def test_server_binds_loopback_answers_and_stops():
    app = create_app({"fake": FakeEngine()})
    threads_before = set(threading.enumerate())  # other tests' servers may still be running
    with running_server(app) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{base_url}/health").json() == {"status": "ok"}
        server_threads = [
            thread for thread in set(threading.enumerate()) - threads_before if thread.name == "wattlm-uvicorn"
        ]
        assert len(server_threads) == 1
    assert not any(thread.is_alive() for thread in server_threads)


def test_a_departed_streaming_client_aborts_its_generation():
    engine = EndlessEngine()
    with running_server(create_app({"endless": engine})) as base_url:
        request = {"model": "endless", "prompt": "go", "stream": True, "max_tokens": 64}
        with httpx.stream("POST", f"{base_url}/v1/completions", json=request, timeout=30) as response:
            lines = response.iter_lines()
            received = [line for line in islice(lines, 6) if line.startswith("data: ")]
        assert len(received) == 3  # data lines alternate with blank separators
        # The connection is closed; the server must close the engine's iterator (bounded wait).
        assert engine.aborted.wait(timeout=20)


def test_the_http_layer_does_not_import_a_backend():
    # Heavy backends load only when an engine is built, so `watt --help` and tests without models stay fast.
    code = "import sys, wattlm.serve; assert 'llama_cpp' not in sys.modules, 'llama_cpp imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_missing_gguf_is_not_found(tmp_path):
    with pytest.raises(NotFound, match="missing.gguf"):
        LlamaCppEngine(tmp_path / "missing.gguf")
