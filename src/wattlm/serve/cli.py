"""`watt serve`: the serving stage's command (mounted by the main CLI)."""

from __future__ import annotations

from typing import Annotated

import typer

from wattlm.cli_common import Home, registry_from


def serve_command(
    model: Annotated[list[str], typer.Option("--model", help="Model or export name/id (repeatable).")],
    host: Annotated[str, typer.Option(envvar="WATT_HOST", help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="WATT_PORT", help="Port.")] = 8000,
    n_ctx: Annotated[int, typer.Option(help="Context length per model.")] = 2048,
    home: Home = None,
) -> None:
    """Serve models through an OpenAI-compatible API (llama.cpp on the exported GGUF)."""
    from wattlm.serve.launch import launch

    launch(registry_from(home), model, host=host, port=port, n_ctx=n_ctx)
