"""`watt serve` options reach the app the launch function builds."""

def test_cli_limits_reach_the_app(tmp_path, monkeypatch):
    import typer
    from typer.testing import CliRunner

    from wattlm.serve import launch as launch_module
    from wattlm.serve import server
    from wattlm.serve.cli import serve_command

    from .fakes import FakeEngine

    served = {}
    monkeypatch.setattr(launch_module, "model_card", lambda registry, art, gguf: {"id": "m"})
    monkeypatch.setattr(launch_module, "build_engine", lambda *args: FakeEngine(name="m"))
    monkeypatch.setattr(server, "serve", lambda app, host, port: served.setdefault("limits", app.state.limits))

    class Art:
        name = "m"

    monkeypatch.setattr(launch_module, "model_source", lambda registry, ref, loads: (Art(), tmp_path / "m.gguf"))
    app = typer.Typer()
    app.command()(serve_command)
    args = ["--model", "m", "--home", str(tmp_path), "--max-request-bytes", "2048", "--request-timeout", "0",
            "--max-tokens", "7"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    limits = served["limits"]
    assert (limits.max_request_bytes, limits.request_timeout, limits.max_tokens) == (2048, None, 7)
