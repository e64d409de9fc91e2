"""Pieces every CLI module shares: workspace option, --json output, progress switch, 80-column output."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperCommand

Home = Annotated[Optional[Path], typer.Option("--home", envvar="WATT_HOME", help="Workspace folder (registry + artifacts).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Wide = Annotated[bool, typer.Option("--wide", help="Full ids and every column (for wide terminals).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", envvar="WATT_QUIET", help="No progress bars.")]

# Measured: below this width typer's rich option table cuts `watt serve`'s long option names ("--max-request-by…").
WIDE_HELP_COLUMNS = 100


class NarrowSafeHelp(TyperCommand):
    """A verb with long option names: in a terminal narrower than WIDE_HELP_COLUMNS its --help uses click's
    plain layout, which wraps descriptions and never cuts an option name, instead of typer's rich table."""

    def format_help(self, ctx, formatter) -> None:
        if shutil.get_terminal_size().columns >= WIDE_HELP_COLUMNS:
            return super().format_help(ctx, formatter)
        mode, self.rich_markup_mode = self.rich_markup_mode, None  # typer's own switch to the plain layout
        try:
            return super().format_help(ctx, formatter)
        finally:
            self.rich_markup_mode = mode


def registry_from(home: Path | None, *, sweep: bool = True):
    from wattlm.registry import Registry

    return Registry(home, sweep=sweep)


def short_id(artifact_id: str) -> str:
    """The id as tables print it ("mo-1a2b3c"): the registry resolves any unique prefix of 4+ hex digits."""
    return artifact_id[:9]


def model_row(art) -> dict:
    return {"id": art.id, "name": art.name, "tier": art.tier, "kind": art.kind, "format": art.format,
            "parents": [pid for pid, _ in art.parents], "path": str(art.path)}


def shown_path(path: str | Path) -> str:
    """A path as the user can paste it: relative to the working directory when under it, else absolute."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def print_paths(console, paths: list[tuple[str, str | Path]]) -> None:
    """Paths on their own lines, never cut: soft_wrap lets the terminal wrap a long one whole."""
    from rich.markup import escape

    for label, path in paths:
        console.print(f"[bold]{escape(label)}:[/] {escape(shown_path(path))}", soft_wrap=True, highlight=False)


def err_console():
    from rich.console import Console

    return Console(stderr=True)


def print_rich(renderable) -> None:
    from rich.console import Console

    Console().print(renderable)


def emit(payload, as_json: bool, render) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")
    else:
        render(payload)
