"""`watt models`: register, list, inspect and shrink models."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from wattlm.cli_common import AsJson, Home, Wide, emit, err_console, model_row, registry_from, short_id

models_app = typer.Typer(help="Register and inspect models.", no_args_is_help=True)


def models_table(rows: list[dict], wide: bool = False):
    """The `watt models list` table. Narrow (the default) fits 80 columns: short ids (their prefix says
    the kind: mo-, ex-, da-), one parent per line, no path, and tier/format never wrap, so a word like
    `foundation` is never split across lines. Wide: full ids, the kind and the path."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
    show = (lambda i: i) if wide else short_id
    table.add_column("id", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("tier", no_wrap=True, min_width=len("foundation"))
    for column in ("kind", "format") if wide else ("format",):
        table.add_column(column, no_wrap=True)
    table.add_column("parents", no_wrap=True)
    if wide:
        table.add_column("path", no_wrap=True)
    for r in rows:
        cells = [show(r["id"]), r["name"], r["tier"] or "", *([r["kind"]] if wide else []), r["format"] or "",
                 "\n".join(show(p) for p in r["parents"])]
        table.add_row(*cells, *([r["path"]] if wide else []))
    return table


@models_app.command("list")
def models_list(home: Home = None, as_json: AsJson = False, wide: Wide = False, all_kinds: Annotated[bool, typer.Option(
        "--all", help="Include datasets, exports and reports.")] = False) -> None:
    """List registered models (and, with --all, every artifact)."""
    registry = registry_from(home)
    arts = registry.list() if all_kinds else registry.list("model") + registry.list("export")
    rows = [model_row(a) for a in sorted(arts, key=lambda a: a.created)]

    def render(rows):
        if not rows:
            print("no models yet: `watt models add gemma3-270m` or `watt run examples/power-grid/recipe.yaml`")
            return
        from rich.console import Console
        from rich.measure import Measurement

        table = models_table(rows, wide)
        console = Console()
        if wide:  # full columns even past the terminal's edge: nothing folded or cut
            natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
            console = Console(width=max(console.width, natural))
        console.print(table)
    emit(rows, as_json, render)


@models_app.command("show")
def models_show(model: Annotated[str, typer.Argument(help="Model name or id (a short id will do).")],
                home: Home = None, as_json: AsJson = False) -> None:
    """Show one artifact with its metrics and recipe."""
    art = registry_from(home).get(model)
    emit(art.to_dict(), as_json, lambda d: print(json.dumps(d, indent=2, ensure_ascii=False)))


@models_app.command("add")
def models_add(
    source: Annotated[str, typer.Argument(help="A HF model folder, a .gguf file, or a packaged name "
                                                "(gemma3-270m, smollm2-135m).")],
    name: Annotated[Optional[str], typer.Option(help="Registry name (default: from the source).")] = None,
    tier: Annotated[str, typer.Option(help="foundation, industry or task.")] = "foundation",
    home: Home = None, as_json: AsJson = False,
) -> None:
    """Register a model."""
    from wattlm.models.store import add_model

    art = add_model(registry_from(home), source, name=name, tier=tier)
    emit(model_row(art), as_json, lambda r: print(f"registered {r['name']} as {r['id']} ({r['format']}, {r['tier']})"))


@models_app.command("shrink")
def models_shrink(
    model: Annotated[str, typer.Argument(help="The teacher: model name or id.")],
    layers: Annotated[int, typer.Option(min=1, help="Transformer layers the student keeps (evenly spread, "
                                                    "first and last included).")],
    name: Annotated[Optional[str], typer.Option(help="Registry name (default: <model>-<layers>l).")] = None,
    data: Annotated[Optional[str], typer.Option(help="Calibration dataset: drop the block of layers that changes "
                                                     "its hidden states least (without it: keep layers spread evenly).")] = None,
    home: Home = None, as_json: AsJson = False,
) -> None:
    """Make a smaller student from a model's own layers, ready for `watt train --method distill`."""
    from wattlm.models.shrink import calibration_ids, shrink_model
    from wattlm.models.store import resolve_model

    registry = registry_from(home)
    parent = resolve_model(registry, model)
    calibration = calibration_ids(registry, parent, registry.get(data)) if data else None
    art, reused = shrink_model(registry, parent, layers, name or f"{parent.name}-{layers}l", calibration=calibration,
                               progress=None if as_json else lambda m: err_console().print(f"[bold]shrink[/] {m}"))
    row = {**model_row(art), "reused": reused, **art.metrics}
    emit(row, as_json, lambda r: print(f"registered {r['name']} as {r['id']}: {r['layers']} of {r['parent_layers']} "
                                       f"layers, {r['parameters'] / 1e6:.1f}M parameters"))
