"""`watt serve` options reach the app the launch function builds."""

import pytest


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


def _serve(tmp_path, monkeypatch, args, env=None):
    """`watt serve --model m ARGS` with the engine builder recorded instead of run: (result, its arguments)."""
    import inspect

    import typer
    from typer.testing import CliRunner

    from wattlm.engines.table import build_engine
    from wattlm.serve import launch as launch_module
    from wattlm.serve import server
    from wattlm.serve.cli import serve_command

    from .fakes import FakeEngine

    built = []

    def record(*args):
        built.append(inspect.signature(build_engine).bind(*args).arguments)
        return FakeEngine(name="m")

    class Art:
        name = "m"

    monkeypatch.setattr(launch_module, "model_card", lambda registry, art, gguf: {"id": "m"})
    monkeypatch.setattr(launch_module, "model_source", lambda registry, ref, loads: (Art(), tmp_path / "m.gguf"))
    monkeypatch.setattr(launch_module, "build_engine", record)
    monkeypatch.setattr(server, "serve", lambda app, host, port: None)
    app = typer.Typer()
    app.command()(serve_command)
    result = CliRunner().invoke(app, ["--model", "m", "--home", str(tmp_path), *args], env=env)
    return result, built


@pytest.mark.parametrize("args, env, flash_attn", [
    ([], {}, False),
    (["--flash-attn", "on"], {}, True),
    (["--flash-attn", "off", "--engine", "simple"], {}, False),
    (["--engine", "simple"], {"WATT_FLASH_ATTN": "on"}, True),
])
def test_flash_attn_reaches_the_engine_settings(tmp_path, monkeypatch, args, env, flash_attn):
    result, built = _serve(tmp_path, monkeypatch, args, env)
    assert result.exit_code == 0, result.output
    [arguments] = built
    assert arguments["flash_attn"] is flash_attn
    assert ("flash attention on" in result.output) is flash_attn  # the start line says so


def test_a_bad_flash_attn_value_is_typers_one_line_error(tmp_path, monkeypatch):
    result, built = _serve(tmp_path, monkeypatch, ["--flash-attn", "maybe"])
    assert result.exit_code == 2 and not built
    assert "Invalid value for '--flash-attn'" in result.output and "'on', 'off'" in result.output


@pytest.mark.parametrize("engine", ["transformers", "vllm"])
def test_flash_attn_on_is_refused_for_engines_without_llama_cpp(tmp_path, monkeypatch, engine):
    result, built = _serve(tmp_path, monkeypatch, ["--flash-attn", "on", "--engine", engine, "--replicas", "2"])
    assert result.exit_code != 0 and not built  # refused before Ray or any model starts
    message = str(result.exception)
    assert message == f"--flash-attn on applies to the llama.cpp engines (batch, simple), not '{engine}'"
    assert _serve(tmp_path, monkeypatch, ["--flash-attn", "off", "--engine", engine])[0].exit_code == 0


def test_flash_attn_reaches_lora_engines_and_replicas(tmp_path, monkeypatch):
    from wattlm.registry import Registry
    from wattlm.serve import launch as launch_module
    from wattlm.serve import server

    from .fakes import FakeEngine

    class Cluster:
        settings = []

        def deploy(self, source, name, engine, settings, adapters=None):
            self.settings.append(settings)
            return FakeEngine(name=name)

        def describe(self):
            return "a fake cluster"

    class Art:
        name = "m"

    monkeypatch.setattr(launch_module, "model_card", lambda registry, art, gguf: {"id": "m"})
    monkeypatch.setattr(launch_module, "model_source", lambda registry, ref, loads: (Art(), tmp_path / "m.gguf"))
    monkeypatch.setattr(server, "serve", lambda app, host, port: None)
    launch_module.launch(Registry(tmp_path / "home"), ["m"], flash_attn=True, replicas=Cluster())
    assert [settings.flash_attn for settings in Cluster.settings] == [True]

    class BatchEngine:  # records the options the adapter's engine is built with
        made = []

        def __init__(self, gguf, **options):
            self.made.append(options)

    monkeypatch.setattr("wattlm.engines.batching.engine.LlamaCppBatchEngine", BatchEngine)
    launch_module.lora_loader(tmp_path / "m.gguf", "m", "a", tmp_path / "a.gguf", dict, 512, 2, 0, None, True)()
    [options] = BatchEngine.made
    assert options["flash_attn"] is True and options["lora_path"] == tmp_path / "a.gguf"
