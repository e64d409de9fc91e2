"""`watt serve --replicas`: options, CPU shares, Ray's errors mapped to ours, the stall bound, and the
ingress engine over a fake Serve handle. No Ray is started here (tests/serve/test_replicas_ray.py does)."""

from __future__ import annotations

import sys

import pytest

from wattlm.engines.base import ChatTemplates, Embeddings, EngineOverloaded, Metered, PromptTooLong, Scoring
from wattlm.engines.params import GenerationChunk, SamplingParams
from wattlm.errors import WattError
from wattlm.serve.replicas.options import ReplicaSettings, queue_bounds, replica_share
from wattlm.serve.replicas.stall import StallWatcher

# ---- options ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cpus", "replicas", "threads", "expected"), [
    (2, 1, None, (2.0, 2)), (2, 2, None, (1.0, 1)), (8, 3, None, (2.0, 2)), (2, 3, None, (0.6667, 1)),
    (2, 2, 4, (1.0, 4)),
])
def test_each_replica_reserves_its_share_and_runs_as_many_threads(cpus, replicas, threads, expected):
    assert replica_share(cpus, replicas, threads) == expected


def test_a_cluster_without_cpus_is_refused():
    with pytest.raises(WattError, match="no CPUs"):
        replica_share(0, 2, None)


def test_a_replica_takes_what_its_engine_holds_and_the_handle_queues_the_waiting_ones():
    assert queue_bounds(8, 32) == (40, 32)
    assert queue_bounds(4, 0) == (4, 1)  # Serve's queue bound must be positive (-1 would be unbounded)


def test_one_replica_without_an_address_is_the_server_without_ray():
    assert not ReplicaSettings().uses_ray
    assert ReplicaSettings(replicas=2).uses_ray and ReplicaSettings(replicas=2).starts_local_ray
    assert ReplicaSettings(ray_address="local").starts_local_ray
    cluster = ReplicaSettings(ray_address="ray://head:10001")
    assert cluster.uses_ray and not cluster.starts_local_ray
    with pytest.raises(ValueError):
        ReplicaSettings(replicas=0)


def _serve_cli(tmp_path, monkeypatch, args, env=None):
    import typer
    from typer.testing import CliRunner

    from wattlm.serve import launch as launch_module
    from wattlm.serve.cli import serve_command

    launched = {}
    monkeypatch.setattr(launch_module, "launch", lambda registry, refs, **options: launched.update(options))
    app = typer.Typer()
    app.command()(serve_command)
    result = CliRunner().invoke(app, ["--model", "m", "--home", str(tmp_path), *args], env=env)
    return result, launched


def test_one_replica_launches_exactly_as_before(tmp_path, monkeypatch):
    result, launched = _serve_cli(tmp_path, monkeypatch, ["--replicas", "1"])
    assert result.exit_code == 0, result.output
    assert "replicas" not in launched  # the launch call of a server without replicas, unchanged


def test_launch_deploys_each_model_on_the_cluster_with_the_engine_settings(tmp_path, monkeypatch):
    from wattlm.registry import Registry
    from wattlm.serve import launch as launch_module
    from wattlm.serve import server

    from .fakes import FakeEngine

    class Cluster:
        deployed = []

        def deploy(self, source, name, engine, settings, adapters=None):
            assert adapters is None  # no --lora
            self.deployed.append((source, name, engine, settings))
            return FakeEngine(name=name)

        def describe(self):
            return "2 replica(s) per model on a fake Ray"

    class Art:
        name = "m"

    apps = []
    monkeypatch.setattr(launch_module, "model_card", lambda registry, art, gguf: {"id": "m"})
    monkeypatch.setattr(launch_module, "model_source", lambda registry, ref, loads: (Art(), tmp_path / "m.gguf"))
    monkeypatch.setattr(launch_module, "build_engine", lambda *args: pytest.fail("built outside the cluster"))
    monkeypatch.setattr(server, "serve", lambda app, host, port: apps.append(app))
    launch_module.launch(Registry(tmp_path / "home"), ["m"], n_ctx=512, max_seqs=3, max_waiting=5, n_threads=None,
                         replicas=Cluster())
    [(source, name, engine, settings)] = Cluster.deployed
    assert (source, name, engine) == (tmp_path / "m.gguf", "m", "batch")
    assert (settings.n_ctx, settings.max_seqs, settings.max_waiting, settings.n_threads) == (512, 3, 5, None)
    assert apps and apps[0].state.served_models.engines().keys() == {"m"}


@pytest.mark.parametrize("flags", [["--lora", "a=b.gguf", "--engine", "transformers"], ["--load-on-demand"],
                                   ["--keep-alive", "30"]])
def test_options_replicas_cannot_honour_are_refused_before_ray_starts(tmp_path, monkeypatch, flags):
    result, launched = _serve_cli(tmp_path, monkeypatch, ["--replicas", "2", *flags])
    assert result.exit_code != 0 and not launched
    assert flags[0] in str(result.exception) and "--replicas" in str(result.exception)


def test_missing_ray_serve_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray.serve", None)  # `from ray import serve` now raises ImportError
    result, launched = _serve_cli(tmp_path, monkeypatch, [], env={"WATT_REPLICAS": "2"})
    assert result.exit_code != 0 and not launched
    message = str(result.exception)
    assert "wattlm[serve-ray]" in message and "\n" not in message


# ---- Ray's errors, seen from the ingress ---------------------------------------------------------------



@pytest.fixture
def ray_exceptions():
    return pytest.importorskip("ray.exceptions")  # the exception classes only: no Ray is started


def _task_error(cause: BaseException):
    from ray import exceptions as ray_exceptions

    return ray_exceptions.RayTaskError("generate", "Traceback ...", cause, proctitle="replica", pid=1,
                                       ip="127.0.0.1").as_instanceof_cause()


def test_an_engine_error_in_a_replica_is_the_same_error_here(ray_exceptions):
    from wattlm.serve.replicas.errors import replica_error

    mapped = replica_error(_task_error(PromptTooLong("prompt is 900 tokens")), "m")
    assert type(mapped) is PromptTooLong and "900 tokens" in str(mapped)
    full = replica_error(_task_error(EngineOverloaded("queue full", retry_after=3)), "m")
    assert type(full) is EngineOverloaded and full.retry_after == 3


@pytest.mark.parametrize(("kind", "args"), [
    ("ActorDiedError", ()), ("ActorUnavailableError", ("gone", None)), ("WorkerCrashedError", ()),
    ("GetTimeoutError", ("late",)),
])
def test_a_replica_lost_or_late_is_a_503_the_client_may_retry(ray_exceptions, kind, args):
    from wattlm.serve.replicas.errors import ReplicaLost, replica_error

    mapped = replica_error(getattr(ray_exceptions, kind)(*args), "grid-qa")
    assert isinstance(mapped, ReplicaLost) and isinstance(mapped, EngineOverloaded)  # the app answers 503
    assert "grid-qa" in str(mapped) and mapped.retry_after == 1


def test_serves_backpressure_is_a_full_queue_and_a_stall_names_its_bound(ray_exceptions):
    from ray.serve.exceptions import BackPressureError, RequestCancelledError

    from wattlm.serve.replicas.errors import ReplicaLost, replica_error

    full = replica_error(BackPressureError(num_queued_requests=5, max_queued_requests=4), "m")
    assert type(full) is EngineOverloaded and "busy" in str(full)
    stalled = replica_error(RequestCancelledError("r1"), "m", stalled_after=120.0)
    assert isinstance(stalled, ReplicaLost) and "120 s" in str(stalled)
    cancelled = RequestCancelledError("r2")  # cancelled because the client left: nothing to translate
    assert replica_error(cancelled, "m") is cancelled
    other = ValueError("not Ray's")
    assert replica_error(other, "m") is other


# ---- the stall bound ----------------------------------------------------------------------------------


def test_a_silent_stream_is_cancelled_after_the_bound_and_a_busy_one_is_not():
    now = [0.0]
    watcher = StallWatcher(timeout=10.0, clock=lambda: now[0])
    cancelled = []
    silent = watcher.watch(lambda: cancelled.append("silent"))
    busy = watcher.watch(lambda: cancelled.append("busy"))
    now[0] = 6.0
    busy.touch()
    assert watcher.check() == [] and cancelled == []
    now[0] = 10.5
    assert watcher.check() == [silent] and cancelled == ["silent"]
    assert silent.stalled_after == 10.0 and busy.stalled_after is None
    busy.cancel_soon()  # a client gone: cancelled at once, not counted as a stall
    assert watcher.check() == [busy] and cancelled == ["silent", "busy"] and busy.stalled_after is None
    watcher.close()


def test_a_failing_cancel_does_not_stop_the_watcher():
    watcher = StallWatcher(timeout=1.0, clock=lambda: 5.0)

    def dead_replica():
        raise RuntimeError("actor is dead")

    watcher.watch(dead_replica).cancel_soon()
    assert len(watcher.check()) == 1


# ---- the ingress engine over a fake handle ------------------------------------------------------------


class FakeResponse:
    """What Serve's handle returns: an iterator of the replica's items (a streaming call) or a result."""

    def __init__(self, items):
        self._items, self.cancelled = iter(items), False

    def __iter__(self):
        return self

    def __next__(self):
        item = next(self._items)
        if isinstance(item, BaseException):
            raise item
        return item

    def result(self, timeout_s=None):
        return next(self)

    def cancel(self):
        self.cancelled = True


class FakeMethod:
    def __init__(self, handle, name):
        self._handle, self._name = handle, name

    def remote(self, *args):
        response = FakeResponse(self._handle.scripts.pop(0))
        self._handle.calls.append((self._name, args, response))
        return response


class FakeHandle:
    def __init__(self, *scripts):
        self.scripts, self.calls = list(scripts), []

    def options(self, **_):
        return self

    def __getattr__(self, name):
        return FakeMethod(self, name)


def identity(replica: str, pid: int = 100) -> dict:
    return {"replica": replica, "pid": pid, "host": "h"}


def chunk(text: str, done: bool = False, count: int = 1) -> GenerationChunk:
    return GenerationChunk(text=text, finish_reason="length" if done else None, prompt_tokens=4, completion_tokens=count)


def engine_over(handle, capabilities=("Metered",), **profile):
    from wattlm.serve.replicas.client import replicated_engine

    return replicated_engine(handle, "m", {"context_length": 64, "capabilities": list(capabilities), **profile},
                             ReplicaSettings(replicas=2))


def test_chunks_stream_through_and_each_request_counts_for_its_replica():
    handle = FakeHandle([identity("A"), chunk("Hel", count=1), chunk("lo", done=True, count=2)],
                        [identity("B", 101), chunk("Hi", done=True, count=1)])
    engine = engine_over(handle)
    assert [c.text for c in engine.generate("p", SamplingParams())] == ["Hel", "lo"]
    assert [c.text for c in engine.generate("p", SamplingParams())] == ["Hi"]
    counts = engine.replica_counts()
    assert counts["A"] == {"pid": 100, "host": "h", "requests": 1, "in_flight": 0, "failed": 0}
    assert counts["B"]["requests"] == 1 and counts["B"]["pid"] == 101
    assert engine.counters == {"prompt_tokens": 8, "generated_tokens": 3}
    assert (engine.metrics.requests, engine.metrics.in_flight, engine.running, engine.waiting) == (2, 0, 0, 0)
    assert not any(response.cancelled for _, _, response in handle.calls)  # finished: nothing to cancel


def test_a_replica_dying_mid_answer_ends_that_request_with_replica_lost(ray_exceptions):
    from wattlm.serve.replicas.errors import ReplicaLost

    handle = FakeHandle([identity("A"), chunk("Hel"), ray_exceptions.ActorDiedError()])
    engine = engine_over(handle)
    stream = engine.generate("p", SamplingParams())
    assert next(stream).text == "Hel"
    with pytest.raises(ReplicaLost, match="stopped while answering"):
        next(stream)
    assert engine.replica_counts()["A"] == {"pid": 100, "host": "h", "requests": 1, "in_flight": 0, "failed": 1}
    assert (engine.metrics.in_flight, engine.running, engine.waiting) == (0, 0, 0)


def test_an_engine_error_reaches_the_app_before_any_text(ray_exceptions):
    handle = FakeHandle([identity("A"), _task_error(PromptTooLong("prompt is too long"))])
    with pytest.raises(PromptTooLong):
        next(engine_over(handle).generate("p", SamplingParams()))


class SilentResponse(FakeResponse):
    """A replica that sends its identity and then nothing (a stopped process): next() blocks until cancelled."""

    def __init__(self):
        super().__init__([identity("A")])
        import threading

        self._cancelled = threading.Event()

    def __next__(self):
        try:
            return super().__next__()
        except StopIteration:
            if not self._cancelled.wait(30):
                raise AssertionError("never cancelled") from None
            from ray.serve.exceptions import RequestCancelledError

            raise RequestCancelledError("r1") from None

    def cancel(self):
        super().cancel()
        self._cancelled.set()


def test_a_silent_replica_is_cut_off_by_the_stall_bound_not_waited_for(ray_exceptions):
    from wattlm.serve.replicas.client import replicated_engine
    from wattlm.serve.replicas.errors import ReplicaLost

    handle = FakeHandle()
    handle.generate = type("Method", (), {"remote": staticmethod(lambda *args: SilentResponse())})()
    engine = replicated_engine(handle, "m", {"context_length": 64, "capabilities": ["Metered"]},
                               ReplicaSettings(replicas=2, stall_timeout=0.2))
    with pytest.raises(ReplicaLost, match="for 0.2 s"):
        next(engine.generate("p", SamplingParams()))
    assert engine.replica_counts()["A"]["failed"] == 1
    engine.close()


def test_closing_a_stream_early_cancels_the_replicas_request():
    handle = FakeHandle([identity("A"), chunk("a"), chunk("b"), chunk("c", done=True)])
    engine = engine_over(handle)
    stream = engine.generate("p", SamplingParams())
    next(stream)
    stream.close()  # the client left
    assert handle.calls[0][2].cancelled
    assert engine.replica_counts()["A"]["in_flight"] == 0


def test_the_ingress_engine_has_exactly_the_replicas_capabilities():
    plain = engine_over(FakeHandle(), capabilities=("Metered",))
    assert isinstance(plain, Metered) and not isinstance(plain, Scoring) and not isinstance(plain, ChatTemplates)
    rich = engine_over(FakeHandle(), capabilities=("Scoring", "Embeddings", "Metered"))
    assert isinstance(rich, Scoring) and isinstance(rich, Embeddings) and not isinstance(rich, ChatTemplates)


def test_one_shot_calls_go_to_a_replica_and_fail_cleanly(ray_exceptions):
    from wattlm.serve.replicas.errors import ReplicaLost

    handle = FakeHandle([[3, 4, 5]], [ray_exceptions.ActorDiedError()])
    engine = engine_over(handle)
    assert engine.tokenize("a b") == [3, 4, 5]
    assert handle.calls[0][:2] == ("tokenize", ("a b", True))
    with pytest.raises(ReplicaLost):
        engine.tokenize("a b")


def test_chat_prompts_render_here_only_when_the_template_renders_like_the_replica():
    pytest.importorskip("llama_cpp")
    from wattlm.engines.params import ChatTurn, TokenizerInfo
    from wattlm.serve.replicas.deployment import PROBE_CHAT

    template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}<assistant>"
    info = TokenizerInfo(10, "<s>", 0, "</s>", 1, True, template)
    rendered = "".join(f"<{turn.role}>{turn.content}" for turn in PROBE_CHAT) + "<assistant>"
    same = engine_over(FakeHandle(), ("ChatTemplates", "Vocabulary", "Metered"), has_chat_template=True,
                       tokenizer_info=info, probe_chat=rendered)
    turns = [ChatTurn(role="user", content="hi")]
    assert same.render_chat(turns) == "<user>hi<assistant>"  # no call to a replica
    handle = FakeHandle(["from the replica"])
    different = engine_over(handle, ("ChatTemplates", "Vocabulary", "Metered"), has_chat_template=True,
                            tokenizer_info=info, probe_chat="something else")
    assert different.render_chat(turns) == "from the replica" and handle.calls[0][0] == "render_chat"


# ---- through the app: the client's view of a lost replica -------------------------------------------


def test_a_lost_replica_is_a_503_before_the_answer_and_an_error_event_during_it(ray_exceptions):
    from fastapi.testclient import TestClient

    from wattlm.serve import create_app

    handle = FakeHandle([identity("A"), ray_exceptions.ActorDiedError()],
                        [identity("A"), chunk("Hel"), ray_exceptions.ActorDiedError()])
    app = create_app({"m": engine_over(handle)})
    with TestClient(app) as client:
        whole = client.post("/v1/completions", json={"model": "m", "prompt": "p", "max_tokens": 4})
        assert whole.status_code == 503 and whole.headers["retry-after"] == "1"
        assert "stopped while answering" in whole.json()["error"]["message"]
        streamed = client.post("/v1/completions", json={"model": "m", "prompt": "p", "max_tokens": 4, "stream": True})
        assert streamed.status_code == 200
        events = [line for line in streamed.text.splitlines() if line.startswith("data: ")]
        assert '"Hel"' in events[0] and "stopped while answering" in events[-2] and events[-1] == "data: [DONE]"
