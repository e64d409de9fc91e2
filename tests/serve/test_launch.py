"""`watt serve --model NAME` resolves registry names to the GGUF file to load."""

import pytest

from wattlm.errors import WattError
from wattlm.registry import Registry
from wattlm.serve.launch import model_card, served_file


def test_model_resolves_to_its_smallest_good_export(tmp_path):
    registry = Registry(tmp_path / "ws")
    base = registry.register("model", "base", path=tmp_path, tier="foundation", format="hf")
    industry = registry.register("model", "grid", path=tmp_path, tier="industry", format="hf",
                                 parents=[(base.id, "parent")])
    with pytest.raises(WattError, match="no GGUF export yet"):
        served_file(registry, "grid")
    for quant in ("f16", "q8_0", "q4_k_m"):
        with registry.staging() as staged:
            (staged / f"model-{quant}.gguf").write_bytes(b"GGUF")
            registry.register("export", f"grid-{quant}", staged=staged, tier="industry", format="gguf",
                              parents=[(industry.id, "parent")], meta={"file": f"model-{quant}.gguf", "quant": quant})
    art, gguf = served_file(registry, "grid")
    assert art.id == industry.id and gguf.name == "model-q4_k_m.gguf"
    art, gguf = served_file(registry, "grid-q8_0")  # an export by name is served as itself
    assert art.kind == "export" and gguf.name == "model-q8_0.gguf"
    card = model_card(registry, industry, gguf)
    assert card == {"id": "grid", "artifact_id": industry.id, "tier": "industry", "parent": base.id,
                    "gguf": "model-q8_0.gguf", "created": int(industry.created)}


def test_unknown_model_is_a_clear_error(tmp_path):
    with pytest.raises(WattError, match="unknown model 'ghost'"):
        served_file(Registry(tmp_path / "ws"), "ghost")


def test_quality_decides_which_export_is_served(tmp_path):
    registry = Registry(tmp_path / "ws")
    model = registry.register("model", "grid", path=tmp_path, tier="industry", format="hf")
    measured = {"f16": (500, 43.1), "q8_0": (280, 43.4), "q4_k_m": (250, 57.9)}  # from the Gemma demo run
    for quant, (size, ppl) in measured.items():
        with registry.staging() as staged:
            (staged / f"model-{quant}.gguf").write_bytes(b"GGUF")
            registry.register("export", f"grid-{quant}", staged=staged, format="gguf", parents=[(model.id, "parent")],
                              meta={"file": f"model-{quant}.gguf", "quant": quant}, metrics={"size_mb": size, "ppl": ppl})
    _, gguf = served_file(registry, "grid")
    assert gguf.name == "model-q8_0.gguf"  # q4_k_m is smaller but 34 % worse


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

    monkeypatch.setattr(launch_module, "served_file", lambda registry, ref: (Art(), tmp_path / "m.gguf"))
    app = typer.Typer()
    app.command()(serve_command)
    args = ["--model", "m", "--home", str(tmp_path), "--max-request-bytes", "2048", "--request-timeout", "0",
            "--max-tokens", "7"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    limits = served["limits"]
    assert (limits.max_request_bytes, limits.request_timeout, limits.max_tokens) == (2048, None, 7)
