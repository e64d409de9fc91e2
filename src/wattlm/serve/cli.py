"""`watt serve`: the serving stage's command (mounted by the main CLI)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from wattlm.cli_common import Home, registry_from


class EngineChoice(str, Enum):
    batch = "batch"
    simple = "simple"


def serve_command(
    model: Annotated[list[str], typer.Option("--model", help="Model or export name/id (repeatable).")],
    host: Annotated[str, typer.Option(envvar="WATT_HOST", help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="WATT_PORT", help="Port.")] = 8000,
    n_ctx: Annotated[int, typer.Option(help="Context length of each request.")] = 2048,
    engine: Annotated[
        EngineChoice, typer.Option(help="batch: continuous batching; simple: one request at a time.")
    ] = EngineChoice.batch,
    max_seqs: Annotated[int, typer.Option(min=1, help="Requests decoded together (batch engine).")] = 8,
    max_waiting: Annotated[
        int, typer.Option(min=0, help="Requests queued beyond max-seqs before answering 503 (batch engine).")
    ] = 32,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for llama.cpp (default: its own).")] = None,
    max_request_bytes: Annotated[
        int, typer.Option(min=1, help="Largest request body accepted; bigger ones get 413.")
    ] = 1 << 20,
    max_tokens: Annotated[
        int | None, typer.Option(min=1, help="Cap on a request's max_tokens (default: the context length).")
    ] = None,
    request_timeout: Annotated[
        float | None, typer.Option(min=0.0, help="Seconds before a request is aborted (0: never).")
    ] = 300.0,
    home: Home = None,
) -> None:
    """Serve models through an OpenAI-compatible API (llama.cpp on the exported GGUF)."""
    from wattlm.serve.launch import launch
    from wattlm.serve.limits import Limits

    limits = Limits(max_request_bytes=max_request_bytes, max_tokens=max_tokens,
                    request_timeout=request_timeout or None)
    launch(registry_from(home), model, host=host, port=port, n_ctx=n_ctx, engine=engine.value,
           max_seqs=max_seqs, max_waiting=max_waiting, n_threads=threads, limits=limits)
