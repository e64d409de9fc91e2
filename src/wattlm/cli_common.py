"""Pieces every CLI module shares: workspace option, --json output, progress switch."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

Home = Annotated[Optional[Path], typer.Option("--home", envvar="WATT_HOME", help="Workspace folder (registry + artifacts).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", envvar="WATT_QUIET", help="No progress bars.")]


def registry_from(home: Path | None):
    from wattlm.registry import Registry

    return Registry(home)


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
