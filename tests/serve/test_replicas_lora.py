"""`--lora` with `--replicas`: each replica holds the adapters beside its base engine, and every call of
an adapter's ingress engine names it. No Ray here (tests/serve/test_replicas_ray.py serves a real one)."""

from __future__ import annotations

import pytest

from wattlm.engines.params import GenerationChunk, SamplingParams
from wattlm.errors import NotFound, WattError
from wattlm.serve.replicas.client import replicated_engine
from wattlm.serve.replicas.deployment import EngineReplica
from wattlm.serve.replicas.options import ReplicaSettings

from .fakes import FakeEngine
from .test_replicas import _serve_cli


class Response:
    def __init__(self, items):
        self._items = iter(items)

    def __iter__(self):
        return self._items

    def result(self, timeout_s=None):
        return next(self._items)

    def cancel(self):
        pass


class KeywordHandle:
    """A Serve handle that records each call with its keyword arguments; `replies[method]` holds one script
    per call (a stream's items, or a one-shot call's result as a one-item list)."""

    def __init__(self, replies):
        self.replies, self.calls = replies, []

    def options(self, **_):
        return self

    def broadcast(self, method, **kwargs):
        self.calls.append((method, (), kwargs))
        return type("Broadcast", (), {"results": lambda _, **__: self.replies[method].pop(0)})()

    def __getattr__(self, method):
        handle = self

        class Method:
            def remote(self, *args, **kwargs):
                handle.calls.append((method, args, kwargs))
                return Response(handle.replies[method].pop(0))

        return Method()


def test_an_adapters_engine_names_it_in_every_call_and_the_base_does_not():
    profile = {"context_length": 64, "capabilities": ["Metered", "Vocabulary"], "replica": "A", "pid": 1, "host": "h"}
    done = GenerationChunk(text="hi", finish_reason="stop", prompt_tokens=2, completion_tokens=1)
    identity = {"replica": "A", "pid": 1, "host": "h"}
    handle = KeywordHandle({"describe": [[profile]], "tokenize": [[[5, 6]], [[7]]], "detokenize": [["x"]],
                            "generate": [[identity, done]], "load": [[identity]]})
    base = replicated_engine(handle, "base", profile, ReplicaSettings(replicas=2))
    adapter = base.adapter("grid-lora")
    assert adapter.name == "grid-lora" and handle.calls[-1] == ("describe", (), {"model": "grid-lora"})
    assert adapter.tokenize("a b") == [5, 6] and handle.calls[-1] == ("tokenize", ("a b", True), {"model": "grid-lora"})
    assert adapter.detokenize([1]) == "x" and handle.calls[-1][2] == {"model": "grid-lora"}
    assert [chunk.text for chunk in adapter.generate("p", SamplingParams(max_tokens=2))] == ["hi"]
    assert handle.calls[-1][0] == "generate" and handle.calls[-1][2] == {"model": "grid-lora"}
    adapter.replicas()
    assert handle.calls[-1] == ("load", (), {"model": "grid-lora"})
    assert base.tokenize("a b") == [7] and handle.calls[-1] == ("tokenize", ("a b", True), {})


def replica_with(adapters: dict) -> EngineReplica:
    deployment = EngineReplica.__new__(EngineReplica)
    deployment.engine, deployment.adapters = FakeEngine(name="base"), adapters
    deployment.identity = {"replica": "A", "pid": 1, "host": "h"}
    return deployment


def test_a_replica_answers_each_call_with_the_engine_it_names():
    deployment = replica_with({"grid-lora": FakeEngine(name="grid-lora", chat=False)})
    assert deployment.describe()["has_chat_template"] is True
    assert deployment.describe(model="grid-lora")["has_chat_template"] is False
    assert deployment.tokenize("one two", model="grid-lora") == [0, 2, 3]
    with pytest.raises(WattError, match="no adapter 'other'.*grid-lora"):
        deployment.tokenize("one", model="other")


def test_a_replica_closes_its_adapters_before_the_base_whose_weights_they_share():
    closed = []

    class Closing(FakeEngine):
        def close(self):
            closed.append(self.name)

    deployment = replica_with({"a": Closing(name="a")})
    deployment.engine = Closing(name="base")
    deployment.__del__()
    deployment.__del__()  # the garbage collector may call it again: nothing twice
    assert closed == ["a", "base"]


def test_lora_with_replicas_deploys_the_adapters_in_the_base_replicas(tmp_path, monkeypatch):
    from wattlm.registry import Registry
    from wattlm.serve import launch as launch_module
    from wattlm.serve import server

    adapter_file = tmp_path / "qa.gguf"
    adapter_file.write_bytes(b"GGUF")

    class Adaptable(FakeEngine):
        def adapter(self, name):
            return FakeEngine(name=name)

    class Cluster:
        deployed = []

        def deploy(self, source, name, engine, settings, adapters=None):
            self.deployed.append((name, adapters))
            return Adaptable(name=name)

        def describe(self):
            return "2 replica(s) per model on a fake Ray"

    class Art:
        name, id, parents, tier, created = "m", "m-id", [], "task", 0

    apps = []
    monkeypatch.setattr(launch_module, "model_source", lambda registry, ref, loads: (Art(), tmp_path / "m.gguf"))
    monkeypatch.setattr(launch_module, "lora_loader", lambda *args: pytest.fail("built outside the replicas"))
    monkeypatch.setattr(server, "serve", lambda app, host, port: apps.append(app))
    launch = launch_module.launch
    launch(Registry(tmp_path / "home"), ["m"], loras={"qa": adapter_file}, replicas=Cluster())
    assert Cluster.deployed == [("m", {"qa": adapter_file})]
    assert apps[0].state.served_models.engines().keys() == {"m", "qa"}
    with pytest.raises(NotFound, match="missing.gguf"):  # before anything is deployed
        launch(Registry(tmp_path / "home"), ["m"], loras={"qa": tmp_path / "missing.gguf"}, replicas=Cluster())
    assert len(Cluster.deployed) == 1


def test_lora_with_replicas_passes_the_cli_with_the_batch_engine_only(tmp_path, monkeypatch):
    result, launched = _serve_cli(tmp_path, monkeypatch, ["--replicas", "2", "--lora", "qa=a.gguf"])
    assert result.exit_code == 0, result.output
    assert launched["loras"] == {"qa": __import__("pathlib").Path("a.gguf")}
    result, launched = _serve_cli(tmp_path, monkeypatch, ["--replicas", "2", "--lora", "qa=a", "--engine", "vllm"])
    assert result.exit_code != 0 and not launched and "needs the batch engine" in str(result.exception)


def test_a_replica_builds_its_base_and_adapter_engines_with_the_servers_flash_attn(tmp_path, monkeypatch):
    from wattlm.engines.batching import engine as batch_module
    from wattlm.serve.replicas import deployment

    made = []

    class Recorded(batch_module.LlamaCppBatchEngine):  # the real `from_settings`, nothing loaded
        def __init__(self, gguf, **options):
            made.append(options)

        def close(self):
            pass

    monkeypatch.setattr(batch_module, "LlamaCppBatchEngine", Recorded)
    monkeypatch.setattr(deployment, "replica_identity", lambda: {"replica": "r1"})
    settings = {"n_ctx": 256, "max_seqs": 2, "max_waiting": 0, "n_threads": 1, "flash_attn": True}
    EngineReplica(str(tmp_path / "m.gguf"), "m", "batch", settings, adapters={"a": str(tmp_path / "a.gguf")})
    assert [options["flash_attn"] for options in made] == [True, True]  # the base, then the adapter's engine
    assert made[1]["lora_path"] == tmp_path / "a.gguf"
