"""`watt eval`: perplexity on any text (the callback), `watt eval run` on task files, `watt eval compare`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from wattlm.cli_common import AsJson, Home, Quiet, emit, err_console, print_rich, registry_from
from wattlm.errors import WattError
from wattlm.shared.precision import PRECISIONS

eval_app = typer.Typer(help="Evaluate models: perplexity, multiple choice, QA; compare them side by side.")

TaskFiles = Annotated[Optional[list[Path]], typer.Option(
    "--task", help="Task file: JSONL (mc / qa / text), lm-eval-harness YAML, or a text file/folder (repeatable).")]
BatchSize = Annotated[int, typer.Option(help="Sequences per forward pass.")]
MaxNew = Annotated[int, typer.Option(help="QA: cap on generated tokens per answer.")]
Fewshot = Annotated[Optional[int], typer.Option(help="Solved examples before each prompt (default: the file's own, else 0).")]
Limit = Annotated[Optional[int], typer.Option(help="Only the first N items of each task (quick checks).")]
Kb = Annotated[Optional[str], typer.Option("--kb", help="Knowledge base: score JSONL tasks grounded on it "
                                           "(rag / ragmc: retrieval, closed-book vs grounded answers).")]
TopK = Annotated[int, typer.Option("-k", min=1, max=20, help="With --kb: passages per prompt.")]
Mode = Annotated[str, typer.Option(help="With --kb: retrieval mode, hybrid, bm25 or dense.")]


def precision_name(value: str) -> str:
    if value not in PRECISIONS:
        raise typer.BadParameter(f"'{value}' is not a precision; choose one of: {', '.join(PRECISIONS)}")
    return value


Precision = Annotated[str, typer.Option(parser=precision_name, envvar="WATT_EVAL_PRECISION",
                                        help="fp32 (exact) or bf16 autocast (~1.7x faster on CPUs with bf16 units).")]


@eval_app.callback(invoke_without_command=True)
def eval_default(
    ctx: typer.Context,
    model: Annotated[Optional[str], typer.Option("--model", help="Model name or id.")] = None,
    text: Annotated[Optional[Path], typer.Option("--text", help="A file or folder of text (.txt/.md/.jsonl).")] = None,
    data: Annotated[Optional[str], typer.Option("--data", help="A registered dataset (its held-out split).")] = None,
    seq_len: Annotated[int, typer.Option(help="Tokens per window.")] = 512,
    max_tokens: Annotated[int, typer.Option(help="Cap on evaluated tokens.")] = 20000,
    precision: Precision = "fp32", home: Home = None, as_json: AsJson = False,
) -> None:
    """Perplexity of a model on any text (stored on the model artifact), or a subcommand below."""
    if ctx.invoked_subcommand is not None:
        return
    if model is None:
        raise WattError("give --model M with --text PATH or --data DATASET, or a subcommand (run, compare); "
                        "see `watt eval --help`")
    from wattlm.data.stage import text_dataset
    from wattlm.eval.stage import perplexity_on
    from wattlm.models.store import resolve_model

    if (text is None) == (data is None):
        raise WattError("give exactly one of --text PATH or --data DATASET")
    registry = registry_from(home)
    art = resolve_model(registry, model)
    if text is not None:
        textset, split = text_dataset(registry, text.resolve(), text.name), "all"
    else:
        textset, split = registry.get(data, kind="dataset"), "heldout"
    score, _ = perplexity_on(registry, art, textset, split, seq_len=seq_len, max_tokens=max_tokens,
                             precision=precision)
    payload = {"model": art.name, "model_id": art.id, "text": textset.name, "split": split, **score}
    emit(payload, as_json, lambda p: print(f"{p['model']} on {p['text']}: perplexity {p['ppl']:.3f} over {p['tokens']} tokens"))


def _load_tasks(files: list[Path], batch_size: int, max_new_tokens: int, num_fewshot: int | None,
                limit: int | None, retrieve=None, k: int = 3) -> list:
    from pydantic import ValidationError

    from wattlm.eval.loaders import TaskSettings, load_task
    from wattlm.shared.config import describe_validation_error

    try:
        settings = TaskSettings(batch_size=batch_size, max_new_tokens=max_new_tokens, num_fewshot=num_fewshot, limit=limit)
    except ValidationError as exc:
        raise WattError(describe_validation_error(exc, "watt eval run options")) from None
    if retrieve is not None:  # grounded: JSONL files become rag / ragmc tasks over the KB
        from wattlm.eval.loaders import grounded_task

        tasks = [grounded_task(f, settings, retrieve, k) if f.suffix == ".jsonl" else load_task(f, settings)
                 for f in files]
    else:
        tasks = [load_task(f, settings) for f in files]
    names = [f"{t.kind}:{t.name}" for t in tasks]
    if len(set(names)) != len(names):
        raise WattError(f"two task files give the same task name ({', '.join(names)}); rename one file")
    return tasks


def _retriever(registry, kb: str, mode: str):
    """`retrieve(question, k)` over a KB: built here (a top-layer module), so the eval stage never imports kb."""
    from wattlm.kb.retrieve import RETRIEVERS
    from wattlm.kb.stage import latest_kb
    from wattlm.run.knowledge import kb_retrieve

    if mode not in RETRIEVERS:
        raise WattError(f"unknown retrieval mode {mode!r} (one of: {', '.join(RETRIEVERS)})")
    return kb_retrieve(latest_kb(registry, kb), mode)


@eval_app.command("run")
def eval_run(
    model: Annotated[list[str], typer.Option("--model", help="Model name or id (repeatable).")],
    task: TaskFiles = None,
    with_parent: Annotated[bool, typer.Option("--with-parent", help="Also score each model's parent.")] = False,
    batch_size: BatchSize = 8, max_new_tokens: MaxNew = 32, num_fewshot: Fewshot = None, limit: Limit = None,
    kb: Kb = None, k: TopK = 3, mode: Mode = "hybrid", precision: Precision = "fp32",
    home: Home = None, as_json: AsJson = False, quiet: Quiet = False,
) -> None:
    """Score models on task files; scores are stored on each model and reused on a rerun."""
    from wattlm.eval.runner import evaluate_model, parent_model
    from wattlm.models.store import resolve_model

    if not task:
        raise WattError("give at least one --task FILE")
    registry = registry_from(home)
    retrieve = _retriever(registry, kb, mode) if kb else None
    tasks = _load_tasks(task, batch_size, max_new_tokens, num_fewshot, limit, retrieve, k)
    console = err_console()
    say = (lambda msg: None) if quiet or as_json else (lambda msg: console.print(f"eval: {msg}"))
    models = [resolve_model(registry, ref) for ref in model]
    if with_parent:
        models = [m for child in models for m in (parent_model(registry, child), child)]
    rows = []
    for art in dict((m.id, m) for m in models).values():
        for result in evaluate_model(registry, art, tasks, say=say, precision=precision):
            rows.append({"model": art.name, "model_id": art.id, "task": result.task, "kind": result.kind,
                         "scores": result.scores, "reused": result.reused, "seconds": result.seconds,
                         "items": result.items})

    def render(rows):
        from rich.table import Table

        table = Table("model", "task", "scores", "items", "seconds")
        for r in rows:
            scores = "  ".join(f"{k.rsplit(':', 1)[1]}={v:.2f}" for k, v in r["scores"].items())
            table.add_row(f"{r['model']} ({r['model_id']})", f"{r['kind']}:{r['task']}", scores, str(r["items"]),
                          "cached" if r["reused"] else f"{r['seconds']:.1f}")
        print_rich(table)
    emit(rows, as_json, render)


@eval_app.command("compare")
def eval_compare(
    models: Annotated[list[str], typer.Argument(help="Model names or ids, in display order.")],
    task: TaskFiles = None,
    out: Annotated[Path, typer.Option(help="HTML file to write (a .json with the same numbers goes beside it).")] = Path("eval-compare.html"),
    batch_size: BatchSize = 8, max_new_tokens: MaxNew = 32, num_fewshot: Fewshot = None, limit: Limit = None,
    home: Home = None, as_json: AsJson = False, quiet: Quiet = False,
) -> None:
    """Scores stored on several models side by side; with --task, missing scores are computed first."""
    from wattlm.eval.compare import comparison, render_table, write_comparison
    from wattlm.eval.runner import evaluate_model
    from wattlm.models.store import resolve_model

    registry = registry_from(home)
    arts = [resolve_model(registry, ref) for ref in models]
    if task:
        tasks = _load_tasks(task, batch_size, max_new_tokens, num_fewshot, limit)
        console = err_console()
        say = (lambda msg: None) if quiet or as_json else (lambda msg: console.print(f"eval: {msg}"))
        for art in arts:
            evaluate_model(registry, art, tasks, say=say)
    payload = comparison(registry, arts)
    if not payload["metrics"]:
        raise WattError("no scores stored on these models yet; add --task FILE to compute some")
    html_path, json_path = write_comparison(payload, out)
    payload = {**payload, "html": str(html_path), "json": str(json_path)}

    def render(p):
        print_rich(render_table(p))
        print(f"wrote {p['html']} and {p['json']}")
    emit(payload, as_json, render)
