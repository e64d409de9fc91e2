"""A new engine is one file (`echo.py`) plus one row in `ENGINES`; `watt serve --engine echo` then
serves it, and what it lacks (scoring, embeddings, ...) is a 400 naming the capability, not a 500."""

from __future__ import annotations

import json

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from wattlm.engines.base import Engine, capabilities_of
from wattlm.engines.table import ENGINES, EngineSettings, EngineSpec
from wattlm.registry import Registry
from wattlm.serve import server
from wattlm.serve.cli import serve_command


@pytest.fixture
def echo_app(tmp_path, monkeypatch):
    """The app `watt serve --engine echo --model grid` builds (uvicorn replaced by a capture)."""
    monkeypatch.setitem(ENGINES, "echo", EngineSpec("tests.engines.echo:EchoEngine", "gguf", "the prompt's words back"))
    registry = Registry(tmp_path / "ws")
    with registry.staging() as staged:
        (staged / "grid.gguf").write_bytes(b"GGUF")
        registry.register("export", "grid", staged=staged, tier="industry", format="gguf", meta={"file": "grid.gguf"})
    registry.close()
    served = {}
    monkeypatch.setattr(server, "serve", lambda app, host, port: served.setdefault("app", app))
    cli = typer.Typer()
    cli.command()(serve_command)
    result = CliRunner().invoke(cli, ["--engine", "echo", "--model", "grid", "--home", str(tmp_path / "ws"),
                                      "--n-ctx", "64"])
    assert result.exit_code == 0, result.output
    assert "echo engine" in result.output
    with TestClient(served["app"]) as client:
        yield client


def refused(response, capability: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert capability in error["message"] and error["code"] == "unsupported_capability"


def test_echo_engine_has_the_core_protocol_only(tmp_path):
    from tests.engines.echo import EchoEngine

    engine = EchoEngine.from_settings(tmp_path, "e", EngineSettings(n_ctx=32))
    assert isinstance(engine, Engine) and capabilities_of(engine) == []


def test_completions_stream_the_prompt_back(echo_app):
    body = echo_app.post("/v1/completions", json={"model": "grid", "prompt": "one two three", "max_tokens": 2}).json()
    assert body["choices"][0]["text"] == "one two" and body["choices"][0]["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    cut = echo_app.post("/v1/completions", json={"model": "grid", "prompt": "a b STOP c", "stop": [" STOP"]}).json()
    assert cut["choices"][0] == {**cut["choices"][0], "text": "a b", "finish_reason": "stop"}
    with echo_app.stream("POST", "/v1/completions", json={"model": "grid", "prompt": "x y z", "stream": True}) as stream:
        events = [line.removeprefix("data: ") for line in stream.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert "".join(json.loads(event)["choices"][0]["text"] for event in events[:-1]) == "x y z"


def test_chat_without_a_template_capability_uses_a_plain_transcript(echo_app):
    body = echo_app.post("/v1/chat/completions", json={"model": "grid", "messages": [
        {"role": "user", "content": "hello there"}]}).json()
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "user: hello there assistant:"}


def test_missing_capabilities_are_400_naming_them(echo_app):
    completion = {"model": "grid", "prompt": "one two", "max_tokens": 1}
    refused(echo_app.post("/v1/completions", json={**completion, "logprobs": 1}), "Scoring")
    refused(echo_app.post("/v1/completions", json={**completion, "echo": True}), "Scoring")
    refused(echo_app.post("/v1/completions", json={**completion, "echo": True, "stream": True}), "Scoring")
    chat = {"model": "grid", "messages": [{"role": "user", "content": "hi"}]}
    refused(echo_app.post("/v1/chat/completions", json={**chat, "logprobs": True}), "Scoring")
    refused(echo_app.post("/v1/chat/completions", json={**chat, "response_format": {"type": "json_object"}}),
            "JsonOutput")
    refused(echo_app.post("/v1/embeddings", json={"model": "grid", "input": "hi"}), "Embeddings")
    refused(echo_app.post("/detokenize", json={"model": "grid", "tokens": [0]}), "Vocabulary")
    assert echo_app.post("/tokenize", json={"model": "grid", "prompt": "a b c"}).json()["tokens"] == [0, 1, 2]


def test_the_cli_choices_come_from_the_table(tmp_path):
    cli = typer.Typer()
    cli.command()(serve_command)
    result = CliRunner().invoke(cli, ["--engine", "echo", "--model", "m", "--home", str(tmp_path)])
    flat = " ".join(result.output.replace("│", " ").split())  # the error box wraps lines
    assert result.exit_code == 2 and "'echo' is not an engine; choose one of: batch, simple, transformers, vllm" in flat
