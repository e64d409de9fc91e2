"""`watt export`: a model -> GGUF files (f16 + quantized), each checked against transformers."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from wattlm.cli_common import AsJson, Home, emit, err_console, print_paths, registry_from


def export_command(
    model: Annotated[str, typer.Option("--model", help="Model name or id.")],
    quant: Annotated[Optional[list[str]], typer.Option(
        "--quant", help="Quantized types besides f16 (repeatable; default q8_0 and q4_k_m).")] = None,
    prompt: Annotated[str, typer.Option(help="Prompt for the llama.cpp vs transformers check.")] = "变电站巡视时，值班人员应当",
    home: Home = None, as_json: AsJson = False,
) -> None:
    """Export a model to GGUF (f16 + quantized), checked against transformers in llama.cpp."""
    from wattlm.export.stage import export_model
    from wattlm.models.store import resolve_model

    registry = registry_from(home)
    console = err_console()
    quants = quant or ["q8_0", "q4_k_m"]
    exports, reused = export_model(registry, resolve_model(registry, model), quants, check_prompt=prompt,
                                   progress=lambda m: console.print(f"export: {m}"))
    rows = [{"id": e.id, "quant": e.meta["quant"], "path": str(e.path / e.meta["file"]), **e.metrics} for e in exports]

    def render(rows):
        from rich.console import Console
        from rich.table import Table

        table = Table("quant", "size MB", "decode tok/s", "greedy match")
        for r in rows:
            table.add_row(r["quant"], str(r["size_mb"]), str(r["decode_tok_s"]), f"{r['greedy_match']}/{r['greedy_total']}")
        out = Console()
        out.print(table)
        print_paths(out, [(r["quant"], r["path"]) for r in rows])  # whole paths, below the table
    emit(rows, as_json, render)
