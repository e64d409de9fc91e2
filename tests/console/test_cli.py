"""`watt console`: the app of `watt serve` with no model loaded, the console mounted at `/`."""

from __future__ import annotations

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from wattlm.cli import app as watt


def test_watt_console_serves_the_console_and_the_api(console_home, monkeypatch):
    started = {}
    monkeypatch.setattr("wattlm.serve.server.serve", lambda app, host, port: started.update(app=app, host=host, port=port))
    result = CliRunner().invoke(watt, ["console", "--home", str(console_home), "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert "console on http://127.0.0.1:8123/" in result.output
    assert started["host"] == "127.0.0.1" and started["port"] == 8123
    with TestClient(started["app"]) as client:
        assert "grid-task" in client.get("/").text
        assert client.get("/v1/models").json()["data"] == []  # nothing loaded until asked for
        assert client.get("/health").status_code == 200


def test_watt_console_refuses_an_open_non_loopback_bind(console_home):
    result = CliRunner().invoke(watt, ["console", "--home", str(console_home), "--host", "0.0.0.0"])
    assert result.exit_code != 0
    assert "--insecure" in str(result.exception or "") + result.output  # WattError: one line from main()
