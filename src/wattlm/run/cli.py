"""`watt run recipe.yaml`: every stage of a recipe in order, cached and resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from wattlm.cli_common import AsJson, Home, Quiet, emit, err_console, print_paths, registry_from


def run_command(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
    home: Home = None, as_json: AsJson = False, quiet: Quiet = False,
    job: Annotated[Optional[str], typer.Option("--job", hidden=True, help="Run the console's queued job ID.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also print llama.cpp's and transformers' own "
                                          "log lines (always written to the run's log file).")] = False,
) -> None:
    """Run a whole recipe: data -> train -> eval -> export, cached and resumable."""
    from wattlm.shared.logs import hide_progress_bars

    if not verbose:
        hide_progress_bars()  # before anything imports tqdm: it reads the switch at import
    from wattlm.recipe import load_recipe
    from wattlm.run.pipeline import run_recipe
    from wattlm.run.recording import recorded_run

    loaded = None if job else load_recipe(recipe)  # a CLI typo fails before any job row; a console job records it
    console = err_console()
    registry = registry_from(home)
    with recorded_run(registry.home, recipe, job, loaded.name if loaded else None) as record:
        loaded = loaded or load_recipe(recipe)
        summary = run_recipe(loaded, registry, console=None if as_json else console, progress=not (quiet or as_json),
                             verbose=verbose)
        record.result = {"artifacts": summary.artifacts, "report_html": summary.report_html, "seconds": summary.seconds}
    emit(summary.to_dict(), as_json, lambda s: print_summary(s, console))


def print_summary(summary: dict, console) -> None:
    """The run's table, then its files one per line, whole (never cut by a table column)."""
    from wattlm.run.summary import summary_paths, summary_table

    console.print(summary_table(summary))
    print_paths(console, summary_paths(summary))
