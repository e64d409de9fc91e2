"""Several models in one server: routing by `model`, loading on demand, unloading after keep-alive."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from wattlm.engines.params import SamplingParams
from wattlm.errors import WattError
from wattlm.serve import create_app
from wattlm.serve.catalog import ServedModels

from .fakes import FakeEngine
from .test_app import assert_openai_error


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class ClosableEngine(FakeEngine):
    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__(name=name)
        self.log = log
        log.append(f"load {name}")

    def close(self) -> None:
        self.log.append(f"close {self.name}")


def loaders_for(log: list[str], *names: str) -> dict:
    return {name: (lambda name=name: ClosableEngine(name, log)) for name in names}


def wait_until(condition, timeout: float = 10.0) -> bool:
    """Liveness only: never a speed assertion."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def ask(client, model: str):
    return client.post("/v1/completions", json={"model": model, "prompt": "hi", "max_tokens": 2})


def test_requests_are_routed_by_model_and_loaded_on_first_use():
    log: list[str] = []
    app = create_app({}, model_cards=[{"id": "a", "tier": "industry"}], loaders=loaders_for(log, "a", "b"))
    with TestClient(app) as client:
        listed = {card["id"]: card for card in client.get("/v1/models").json()["data"]}
        assert listed["a"]["loaded"] is False and listed["a"]["tier"] == "industry" and set(listed) == {"a", "b"}
        assert log == []  # nothing loads until a request needs it
        assert ask(client, "b").json()["model"] == "b"
        assert log == ["load b"]
        assert ask(client, "a").status_code == 200 and ask(client, "a").status_code == 200
        assert log == ["load b", "load a"]
        assert all(card["loaded"] for card in client.get("/v1/models").json()["data"])
        assert_openai_error(ask(client, "c"), 404, "'c'", "a, b")
        metrics = client.get("/metrics").text
    assert metrics.startswith("# HELP")


def test_idle_models_unload_and_the_next_request_reloads_them():
    log: list[str] = []
    clock = Clock()
    models = ServedModels({}, loaders=loaders_for(log, "a", "b"), keep_alive=30, clock=clock)
    list(models.engine("a").generate("hi", SamplingParams(max_tokens=1)))
    list(models.engine("b").generate("hi", SamplingParams(max_tokens=1)))
    clock.now += 20
    list(models.engine("b").generate("hi", SamplingParams(max_tokens=1)))
    clock.now += 15
    assert models.unload_idle() == ["a"]  # b was used 15 s ago
    assert not models.is_loaded("a") and models.is_loaded("b") and set(models.engines()) == {"b"}
    assert "".join(chunk.text for chunk in models.engine("a").generate("hi", SamplingParams(max_tokens=2))) == "Hello from"
    assert log == ["load a", "load b", "close a", "load a"]


def test_a_model_is_never_unloaded_under_a_running_generation():
    log: list[str] = []
    clock = Clock()
    models = ServedModels({}, loaders=loaders_for(log, "a"), keep_alive=5, clock=clock)
    running = models.engine("a").generate("hi", SamplingParams(max_tokens=5))
    next(running)
    clock.now += 60
    assert models.unload_idle() == []
    running.close()  # the generation ends now: idle time counts from here
    assert models.unload_idle() == []
    clock.now += 5
    assert models.unload_idle() == ["a"] and log == ["load a", "close a"]


def test_engines_given_already_built_stay_loaded():
    clock = Clock()
    models = ServedModels({"fixed": FakeEngine(name="fixed")}, keep_alive=1, clock=clock)
    clock.now += 100
    assert models.unload_idle() == [] and models.is_loaded("fixed")
    assert "loaded" not in models.card("fixed").model_dump()


def test_keep_alive_thread_unloads_in_a_running_app():
    log: list[str] = []
    app = create_app({}, loaders=loaders_for(log, "a"), keep_alive=0.2)
    models = app.state.served_models
    with TestClient(app) as client:
        assert ask(client, "a").status_code == 200
        assert wait_until(lambda: not models.is_loaded("a"))
        assert ask(client, "a").json()["choices"][0]["text"] == "Hello from"
    assert log[:3] == ["load a", "close a", "load a"]


def test_discovered_models_are_added_on_demand():
    log: list[str] = []

    def discover(model_id: str):
        if model_id != "late":
            return None
        return (lambda: ClosableEngine("late", log)), {"id": "late", "tier": "task"}

    app = create_app({"a": FakeEngine(name="a")}, discover=discover)
    with TestClient(app) as client:
        assert [card["id"] for card in client.get("/v1/models").json()["data"]] == ["a"]
        assert ask(client, "late").status_code == 200
        cards = {card["id"]: card for card in client.get("/v1/models").json()["data"]}
        assert cards["late"]["tier"] == "task" and cards["late"]["loaded"] is True
        assert_openai_error(ask(client, "other"), 404, "other")
        assert log == ["load late"]
    assert log == ["load late", "close late"]  # shutdown closes what the server loaded itself


def test_a_loader_that_fails_is_an_error_and_later_requests_retry():
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise WattError("cannot load GGUF x.gguf: llama.cpp rejected the file")
        return FakeEngine(name="f")

    with TestClient(create_app({}, loaders={"f": flaky})) as client:
        assert_openai_error(ask(client, "f"), 400, "rejected")
        assert ask(client, "f").status_code == 200


@pytest.mark.parametrize("keep_alive", [0, -1])
def test_keep_alive_must_be_positive(keep_alive):
    with pytest.raises(WattError, match="keep-alive"):
        ServedModels({"a": FakeEngine()}, keep_alive=keep_alive)


def test_cli_serves_several_models_and_loads_registry_models_on_demand(tmp_path, monkeypatch):
    import typer
    from typer.testing import CliRunner

    from wattlm.registry import Registry
    from wattlm.serve import launch as launch_module
    from wattlm.serve import server
    from wattlm.serve.cli import serve_command

    registry = Registry(tmp_path / "ws")
    for name in ("first", "second", "third"):
        with registry.staging() as staged:
            (staged / f"{name}.gguf").write_bytes(b"GGUF")
            registry.register("export", name, staged=staged, tier="industry", format="gguf", meta={"file": f"{name}.gguf"})
    registry.close()
    built = []
    monkeypatch.setattr(launch_module, "build_engine", lambda gguf, name, *args: built.append(name) or FakeEngine(name=name))
    served = {}
    monkeypatch.setattr(server, "serve", lambda app, host, port: served.setdefault("app", app))
    cli = typer.Typer()
    cli.command()(serve_command)
    args = ["--model", "first", "--model", "second", "--home", str(tmp_path / "ws"), "--keep-alive", "600",
            "--load-on-demand"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert built == ["first", "second"] and "unloaded after 600 s" in result.output
    with TestClient(served["app"]) as client:
        assert ask(client, "second").json()["model"] == "second"
        assert ask(client, "third").status_code == 200  # found in the registry, loaded now
        assert_openai_error(ask(client, "ghost"), 404, "ghost")
        assert {card["id"] for card in client.get("/v1/models").json()["data"]} == {"first", "second", "third"}
    assert built == ["first", "second", "third"]
    no_model = CliRunner().invoke(cli, ["--home", str(tmp_path / "ws")])
    assert no_model.exit_code != 0 and "--load-on-demand" in str(no_model.exception)
