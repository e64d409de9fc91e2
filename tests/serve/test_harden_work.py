"""Work that must not outlive its request, without a model: bounded pools with a cancel flag,
non-streaming requests cancelled when the client leaves, the cap on models loaded on demand, cached
misses, and no server paths in errors. The same behaviours against SmolLM2 are in test_harden.py."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from wattlm.engines import cancel
from wattlm.engines.base import EngineOverloaded
from wattlm.errors import WattError
from wattlm.serve import create_app, running_server
from wattlm.serve.catalog import ServedModels
from wattlm.serve.redact import without_paths
from wattlm.serve.workers import Pools, WorkerPool

from .fakes import FakeEngine

# ---- worker pools ----------------------------------------------------------------------------------


def test_a_full_pool_refuses_at_once_and_a_cancelled_job_stops_at_its_next_check():
    pool = WorkerPool("scoring", workers=1, queue=1)
    release = threading.Event()
    steps: list[int] = []

    def job() -> str:
        for step in range(1000):
            cancel.check()  # what the scorer does per token
            steps.append(step)
            release.wait(0.01)
        return "finished"

    queued_ran = threading.Event()

    async def scenario() -> None:
        running = asyncio.ensure_future(pool.run(job))
        queued = asyncio.ensure_future(pool.run(queued_ran.set))
        await asyncio.sleep(0.05)
        assert (pool.running, pool.pending) == (1, 2)
        with pytest.raises(EngineOverloaded, match="1 scoring jobs running and 1 waiting"):
            await pool.run(job)
        running.cancel()
        queued.cancel()
        await asyncio.gather(running, queued, return_exceptions=True)
        for _ in range(200):
            if pool.pending == 0:
                break
            await asyncio.sleep(0.01)
        assert pool.pending == 0  # the running job noticed its flag; the queued one was dropped

    asyncio.run(scenario())
    assert len(steps) < 1000
    assert not queued_ran.is_set()
    pool.close()


def test_the_lock_of_a_cancelled_waiter_is_never_taken():
    lock = threading.Lock()
    lock.acquire()
    flag = cancel.CancelFlag()
    woken: list[str] = []
    with cancel.cancel_scope(flag):
        unwatch = cancel.on_cancel(lambda: woken.append("woken"))
    flag.set()
    flag.set()  # callbacks run once
    assert woken == ["woken"]
    unwatch()
    with cancel.cancel_scope(flag), pytest.raises(cancel.Cancelled):
        with cancel.holding(lock):
            pass
    lock.release()
    with cancel.holding(lock):  # no flag: waits and takes it as usual
        assert lock.locked()


class BlockingEmbedder(FakeEngine):
    """Embeddings that run until their request is cancelled (checked per text, as the real Embedder)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.started = threading.Semaphore(0)
        self.stopped = 0

    def embed(self, texts):
        self.started.release()
        try:
            for _ in range(3000):
                cancel.check()
                time.sleep(0.01)
            return super().embed(texts)
        finally:
            self.stopped += 1


def test_embeddings_beyond_the_pool_and_queue_are_503_with_retry_after():
    engine = BlockingEmbedder(name="fake")
    pools = Pools(embeddings=WorkerPool("embeddings", workers=1, queue=1))
    app = create_app({"fake": engine}, pools=pools)
    body = {"model": "fake", "input": ["one two"]}
    with running_server(app) as url:
        async def scenario() -> list[int]:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                slow = [asyncio.ensure_future(client.post("/v1/embeddings", json=body)) for _ in range(2)]
                while pools.embeddings.pending < 2:
                    await asyncio.sleep(0.01)
                third = await client.post("/v1/embeddings", json=body)
                assert third.headers["retry-after"] == "1"
                for request in slow:
                    request.cancel()  # the clients hang up: both jobs are cancelled
                await asyncio.gather(*slow, return_exceptions=True)
                return [third.status_code, third.json()["error"]["code"]]

        assert asyncio.run(scenario()) == [503, "server_overloaded"]
        deadline = time.monotonic() + 30
        while pools.embeddings.pending and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pools.embeddings.pending == 0 and engine.stopped == 1  # the queued one never started
        text = httpx.get(f"{url}/metrics", timeout=10).text
        assert 'wattlm_pool_jobs_refused_total{pool="embeddings"} 1' in text
        assert 'wattlm_pool_jobs_pending{pool="embeddings"} 0' in text


class SlowFake(FakeEngine):
    """Generates one word every 10 ms for as long as asked; counts what it produced."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.produced = 0

    def generate(self, prompt, params):
        from wattlm.engines.params import GenerationChunk

        try:
            for count in range(1, params.max_tokens + 1):
                time.sleep(0.01)
                self.produced += 1
                yield GenerationChunk(" tick", None, 1, count)
            yield GenerationChunk("", "length", 1, params.max_tokens)
        finally:
            self.closed += 1


def test_a_non_streaming_client_that_leaves_stops_its_generation():
    engine = SlowFake(name="slow", context_length=100_000)
    with running_server(create_app({"slow": engine})) as url:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/v1/completions", json={"model": "slow", "prompt": "go", "max_tokens": 3000},
                       timeout=httpx.Timeout(30, read=0.3))
        deadline = time.monotonic() + 30
        while engine.closed == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert engine.closed == 1
        assert engine.produced < 3000  # 30 s of work if nobody had stopped it


# ---- models loaded on demand -----------------------------------------------------------------------


class Counted(FakeEngine):
    def __init__(self, log: list[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.log = log
        log.append(f"load {self.name}")

    def close(self) -> None:
        self.log.append(f"close {self.name}")


def test_beyond_max_loaded_the_least_recently_used_idle_model_is_unloaded():
    log: list[str] = []
    now = [0.0]
    loaders = {name: (lambda name=name: Counted(log, name=name)) for name in ("a", "b", "c")}
    models = ServedModels({}, loaders=loaders, max_loaded=2, clock=lambda: now[0])
    for name in ("a", "b"):
        now[0] += 1
        models.engine(name).load()
    now[0] += 1
    models.engine("a").load()  # a is now more recently used than b
    now[0] += 1
    models.engine("c").load()
    assert log == ["load a", "load b", "close b", "load c"]
    assert [models.is_loaded(name) for name in "abc"] == [True, False, True]
    # Every loaded model busy: no room, a 503 instead of a third model in memory.
    busy = [models.engine(name)._using() for name in ("a", "c")]
    for context in busy:
        context.__enter__()
    with pytest.raises(EngineOverloaded, match="2 models are loaded and all are in use"):
        models.engine("b").load()
    for context in busy:
        context.__exit__(None, None, None)
    models.engine("b").load()
    assert sum(models.is_loaded(name) for name in "abc") == 2
    models.close()


def test_a_model_id_not_found_is_not_looked_up_again_for_a_while():
    now = [0.0]
    lookups: list[str] = []

    def discover(model_id):
        lookups.append(model_id)
        return None

    models = ServedModels({"x": FakeEngine(name="x")}, discover=discover, clock=lambda: now[0], miss_seconds=5)
    for _ in range(3):
        with pytest.raises(WattError, match="not served here"):
            models.engine("ghost")
    assert lookups == ["ghost"]
    now[0] += 6
    with pytest.raises(WattError):
        models.engine("ghost")
    assert lookups == ["ghost", "ghost"]


def test_the_max_loaded_cap_reaches_the_app_and_a_failed_load_shows_no_server_path(tmp_path):
    bad = tmp_path / "secret-folder" / "model.gguf"

    def load():
        raise WattError(f"cannot load GGUF {bad}: llama.cpp rejected the file")

    app = create_app({}, loaders={"m": load}, max_loaded=1)
    with TestClient(app) as client:
        response = client.post("/v1/completions", json={"model": "m", "prompt": "hi", "max_tokens": 1})
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert str(tmp_path) not in message and "secret-folder" not in message and "model.gguf" in message, message


# ---- paths in errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("message, expected", [
    ("cannot load GGUF /tmp/p/x/bad.gguf: llama.cpp rejected the file", "cannot load GGUF bad.gguf: llama.cpp rejected the file"),
    ("GGUF file not found: /root/.watt/artifacts/ab12/model.gguf.", "GGUF file not found: model.gguf."),
    ("/v1/embeddings needs the 'Embeddings' capability", "/v1/embeddings needs the 'Embeddings' capability"),
    ("see http://host/a/b and data/x.jsonl", "see http://host/a/b and data/x.jsonl"),
])
def test_absolute_paths_become_their_last_part(message, expected):
    assert without_paths(message) == expected


def test_the_key_cache_drops_the_least_recently_used_key_first(tmp_path, monkeypatch):
    from wattlm.serve import auth as auth_module
    from wattlm.serve.auth import KeyAuth
    from wattlm.serve.keys import KeyStore

    monkeypatch.setattr(auth_module, "_MAX_CACHED_KEYS", 3)
    store = KeyStore.of_home(tmp_path)
    real, _ = store.create("client")
    reads: list[str] = []
    lookup = store.lookup
    monkeypatch.setattr(store, "lookup", lambda key: reads.append(key) or lookup(key))
    keys = KeyAuth(store, cache_seconds=60, clock=lambda: 0.0)
    assert keys.record(real) is not None
    for number in range(10):  # a flood of unknown keys, the real client's key used in between
        assert keys.record(f"watt-{number:043d}") is None
        assert keys.record(real) is not None
    assert reads.count(real) == 1  # never evicted by the flood: read from the database once
