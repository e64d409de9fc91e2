"""The `watt` command: the table of verbs, in pipeline order.

Each verb lives in its stage's `cli.py` (`models/cli.py`, `data/cli.py`, ...) as a thin wrapper over a
plain function; this module only lists them. Heavy imports happen inside the verbs, so `watt --help`
starts fast.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from typer.core import TyperGroup

from wattlm.cli_common import AsJson, Home, NarrowSafeHelp, emit, registry_from
from wattlm.console.cli import console_command
from wattlm.data.cli import data_app
from wattlm.errors import WattError
from wattlm.eval.cli import eval_app
from wattlm.export.cli import export_command
from wattlm.kb.cli import kb_app
from wattlm.models.cli import models_app
from wattlm.run.cli import run_command
from wattlm.serve.cli import keys_app, serve_command
from wattlm.synth.cli import synth_command
from wattlm.train.cli import train_command

# What `watt --help` lists, top to bottom: the order a recipe runs in, then serving and upkeep.
VERB_ORDER = ("models", "data", "synth", "train", "eval", "export", "kb", "run", "serve", "console", "keys", "lineage",
              "registry")


class PipelineOrder(TyperGroup):
    """Lists verbs in VERB_ORDER (typer would list single commands first, then groups)."""

    def list_commands(self, ctx) -> list[str]:
        rank = {verb: i for i, verb in enumerate(VERB_ORDER)}
        return sorted(super().list_commands(ctx), key=lambda verb: rank.get(verb, len(VERB_ORDER)))


app = typer.Typer(
    help="wattlm: raw documents + a general model -> an evaluated, compressed, served industry model.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, cls=PipelineOrder,
)
registry_app = typer.Typer(help="Look after the workspace's registry (crash leftovers).", no_args_is_help=True)

app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")
app.command("synth", cls=NarrowSafeHelp)(synth_command)
app.command("train")(train_command)
app.add_typer(eval_app, name="eval")
app.command("export")(export_command)
app.add_typer(kb_app, name="kb")
app.command("run")(run_command)
app.command("serve", cls=NarrowSafeHelp)(serve_command)
app.command("console")(console_command)
app.add_typer(keys_app, name="keys")
app.add_typer(registry_app, name="registry")


# -- lineage / registry ------------------------------------------------------------------------

@app.command()
def lineage(model: Annotated[str, typer.Argument(help="Artifact name or id.")], home: Home = None,
            as_json: AsJson = False) -> None:
    """Walk from an artifact back to its foundation and documents, with metrics at each step."""
    from wattlm.lineage import lineage_chain, render_lineage

    chain = lineage_chain(registry_from(home), model)
    emit(chain, as_json, render_lineage)


@registry_app.command("check")
def registry_check(
    clean: Annotated[bool, typer.Option("--clean", help="Remove the orphans found (pending rows with their "
                                                        "folders, unlisted folders, stale temp folders and locks).")] = False,
    home: Home = None, as_json: AsJson = False,
) -> None:
    """List what crashed runs left in the workspace; exit 1 while any of it remains."""
    from wattlm.registry_check import check_registry

    # sweep=False: opening the registry must not tidy up what this verb is asked to report.
    report = check_registry(registry_from(home, sweep=False), clean=clean)
    emit(report, as_json, _render_check)
    if not report["clean"]:
        raise typer.Exit(1)


def _render_check(report: dict) -> None:
    removed = {(o["kind"], o["path"]) for o in report["removed"]}
    for orphan in report["found"]:
        done = "removed " if (orphan["kind"], orphan["path"]) in removed else ""
        print(f"{done}{orphan['kind']}: {orphan['path']}")
    if report["clean"]:
        print(f"registry clean: {report['home']}")
    else:
        print(f"{len(report['remaining'])} orphan(s) remain: `watt registry check --clean` removes them")



def _quiet_libraries() -> None:
    """No hub access at run time, and no library chatter between our own progress lines."""
    import os
    import warnings

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")


def main() -> None:
    """Entry point: user errors print one line and exit non-zero, without a traceback."""
    _quiet_libraries()
    try:
        app()
    except WattError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
