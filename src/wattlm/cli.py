"""The `watt` command: a table from verb to plain function. Heavy imports happen inside the verbs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from wattlm.cli_common import AsJson, Home, Quiet, emit, err_console, print_rich, registry_from
from wattlm.data.cli import data_app
from wattlm.errors import WattError
from wattlm.eval.cli import eval_app
from wattlm.kb.cli import kb_app
from wattlm.serve.cli import keys_app, serve_command
from wattlm.synth.cli import synth_command

app = typer.Typer(
    help="wattlm: raw documents + a general model -> an evaluated, compressed, served industry model.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Register and inspect models.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")
app.add_typer(eval_app, name="eval")
app.add_typer(kb_app, name="kb")
app.add_typer(keys_app, name="keys")
app.command("serve")(serve_command)
app.command("synth")(synth_command)

# -- models ------------------------------------------------------------------------------------

def _model_row(art) -> dict:
    return {"id": art.id, "name": art.name, "tier": art.tier, "kind": art.kind, "format": art.format,
            "parents": [pid for pid, _ in art.parents], "path": str(art.path)}


@models_app.command("list")
def models_list(home: Home = None, as_json: AsJson = False, all_kinds: Annotated[bool, typer.Option(
        "--all", help="Include datasets, exports and reports.")] = False) -> None:
    """List registered models (and, with --all, every artifact)."""
    from rich.table import Table

    registry = registry_from(home)
    arts = registry.list() if all_kinds else registry.list("model") + registry.list("export")
    rows = [_model_row(a) for a in sorted(arts, key=lambda a: a.created)]

    def render(rows):
        if not rows:
            print("no models yet: `watt models add gemma3-270m` or `watt run examples/power-grid/recipe.yaml`")
            return
        table = Table()
        for column in ("id", "name"):
            table.add_column(column, no_wrap=True)
        for column in ("tier", "kind", "format", "parents"):
            table.add_column(column, overflow="fold")
        for r in rows:
            table.add_row(r["id"], r["name"], r["tier"] or "", r["kind"], r["format"] or "", " ".join(r["parents"]))
        print_rich(table)
    emit(rows, as_json, render)


@models_app.command("show")
def models_show(model: Annotated[str, typer.Argument(help="Model name or id.")], home: Home = None,
                as_json: AsJson = False) -> None:
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
    emit(_model_row(art), as_json, lambda r: print(f"registered {r['name']} as {r['id']} ({r['format']}, {r['tier']})"))


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
    row = {**_model_row(art), "reused": reused, **art.metrics}
    emit(row, as_json, lambda r: print(f"registered {r['name']} as {r['id']}: {r['layers']} of {r['parent_layers']} "
                                       f"layers, {r['parameters'] / 1e6:.1f}M parameters"))


# -- lineage -----------------------------------------------------------------------------------

@app.command()
def lineage(model: Annotated[str, typer.Argument(help="Artifact name or id.")], home: Home = None,
            as_json: AsJson = False) -> None:
    """Walk from an artifact back to its foundation and documents, with metrics at each step."""
    from wattlm.lineage import lineage_chain, render_lineage

    chain = lineage_chain(registry_from(home), model)
    emit(chain, as_json, render_lineage)


# -- train / eval / export / serve / run --------------------------------------------------------

@app.command()
def train(
    model: Annotated[str, typer.Option("--model", help="Parent model name or id.")],
    data: Annotated[str, typer.Option("--data", help="Dataset name or id (its train split), or a JSONL/text path.")],
    name: Annotated[str, typer.Option(help="Name of the new model.")],
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 40,
    seq_len: Annotated[int, typer.Option(help="Tokens per sequence.")] = 256,
    batch_size: Annotated[int, typer.Option(help="Sequences per step.")] = 4,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 2e-4,
    method: Annotated[str, typer.Option(help="cpt (documents), sft (chat examples: messages / prompt+response) or "
                                             "distill (learn a teacher's logits).")] = "cpt",
    chat_template: Annotated[Optional[str], typer.Option(help="sft: chatml, gemma or Jinja text, if the parent has none.")] = None,
    replay: Annotated[Optional[Path], typer.Option(help="General text mixed in against forgetting.")] = None,
    replay_ratio: Annotated[float, typer.Option(help="Share of sequences drawn from --replay.")] = 0.0,
    teacher: Annotated[Optional[str], typer.Option(
        help="distill: teacher model name/id, packaged name or HF folder (same tokenizer).")] = None,
    kd_alpha: Annotated[float, typer.Option(help="distill: weight of the KL term; CE gets 1 - it.")] = 0.5,
    kd_temperature: Annotated[float, typer.Option(help="distill: softmax temperature T (KL scaled by T^2).")] = 2.0,
    kd_data: Annotated[str, typer.Option(help="distill: text (documents, like cpt) or chat (examples, like sft).")] = "text",
    home: Home = None, as_json: AsJson = False, quiet: Quiet = False,
) -> None:
    """Train a model on a dataset (cpt, sft or distill; LoRA merged) -> a model of the next tier."""
    from wattlm.models.store import resolve_model
    from wattlm.run.pipeline import text_dataset
    from wattlm.train.config import TrainConfig
    from wattlm.train.dist import context
    from wattlm.train.stage import train_model

    registry = registry_from(home)
    try:
        config = TrainConfig(steps=steps, seq_len=seq_len, batch_size=batch_size, lr=lr, replay_ratio=replay_ratio,
                             method=method, chat_template=chat_template, teacher=teacher, kd_alpha=kd_alpha,
                             kd_temperature=kd_temperature, kd_data=kd_data)
    except ValueError as exc:
        first = exc.errors()[0]
        raise WattError(f"invalid training option: {'.'.join(map(str, first['loc'])) or 'train'}: {first['msg']}") from None
    dist = context()
    # Under torchrun every process runs this verb: rank 0 registers inputs first, the others find them.
    with dist.main_first():
        replay_set = text_dataset(registry, replay.resolve(), replay.name) if replay else None
        path = Path(data)
        dataset = text_dataset(registry, path.resolve(), path.name) if path.exists() else registry.get(data, kind="dataset")
        parent = resolve_model(registry, model)
    art, reused = train_model(registry, parent, dataset, config, name, progress=not quiet, replay=replay_set)
    if not dist.is_main:
        return
    emit({**_model_row(art), "reused": reused, "metrics": art.metrics}, as_json,
          lambda r: print(f"{'reused' if reused else 'trained'} {r['name']} ({r['id']}, {r['tier']}): {r['metrics']}"))


@app.command()
def export(
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
        from rich.table import Table

        table = Table("quant", "size MB", "decode tok/s", "greedy match", "path")
        for r in rows:
            table.add_row(r["quant"], str(r["size_mb"]), str(r["decode_tok_s"]), f"{r['greedy_match']}/{r['greedy_total']}", r["path"])
        print_rich(table)
    emit(rows, as_json, render)


@app.command()
def run(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
    home: Home = None, as_json: AsJson = False, quiet: Quiet = False,
) -> None:
    """Run a whole recipe: data -> train -> eval -> export, cached and resumable."""
    from wattlm.recipe import load_recipe
    from wattlm.run.pipeline import run_recipe
    from wattlm.run.summary import print_summary

    loaded = load_recipe(recipe)
    console = err_console()
    summary = run_recipe(loaded, registry_from(home), console=None if as_json else console, progress=not (quiet or as_json))
    emit(summary.to_dict(), as_json, lambda s: print_summary(s, console))


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
