"""`watt data ...`: the data stage's commands (a sub-app the main CLI mounts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from wattlm.cli_common import AsJson, Home, Quiet, emit, registry_from

data_app = typer.Typer(help="Build clean corpora from raw documents.", no_args_is_help=True)


@data_app.command("build")
def data_build(
    inputs: Annotated[list[Path], typer.Argument(help="Files or folders of raw documents.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder for shards and report.json.")],
    heldout_fraction: Annotated[float, typer.Option(help="Share of documents held out.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Split seed.")] = 0,
    name: Annotated[Optional[str], typer.Option(help="Registry name of the dataset.")] = None,
    min_chars: Annotated[int, typer.Option(help="Drop documents shorter than this after cleaning.")] = 50,
    pii: Annotated[bool, typer.Option("--pii/--no-pii", help="Replace PII with <PII_*> placeholders.")] = True,
    near_dedup: Annotated[bool, typer.Option("--near-dedup/--no-near-dedup", help="MinHash near-duplicate removal.")] = True,
    near_dup_threshold: Annotated[float, typer.Option(help="Jaccard similarity that counts as near-duplicate.")] = 0.7,
    quality_filters: Annotated[bool, typer.Option("--quality-filters/--no-quality-filters",
                                                  help="Gopher-style ratio and repetition filters.")] = True,
    output_format: Annotated[str, typer.Option("--format", help="Shard format: jsonl or parquet.")] = "jsonl",
    workers: Annotated[int, typer.Option(help="Worker processes (0 = all cores); the output does not depend on it.")] = 1,
    home: Home = None, as_json: AsJson = False, quiet: Quiet = False,
) -> None:
    """Clean, deduplicate, scrub and split documents into JSONL shards, report.json and report.html;
    register the dataset."""
    from wattlm.data.config import DataConfig
    from wattlm.data.pipeline import build_corpus

    if output_format not in ("jsonl", "parquet"):
        raise typer.BadParameter(f"{output_format!r}: expected jsonl or parquet", param_hint="--format")
    config = DataConfig(heldout_fraction=heldout_fraction, seed=seed, min_chars=min_chars, scrub_pii=pii,
                        near_dedup=near_dedup, near_dup_threshold=near_dup_threshold, quality_filters=quality_filters,
                        output_format=output_format, workers=workers)
    report = build_corpus(inputs, out, config, progress=not quiet)
    summary = report.to_dict() if hasattr(report, "to_dict") else report.model_dump()
    art = registry_from(home).register(
        "dataset", name or out.resolve().name, path=out, format=config.output_format,
        metrics={k: summary.get(k) for k in ("docs_in", "docs_kept", "docs_train", "docs_heldout")},
    )
    summary["artifact_id"] = art.id

    def render(s):
        print(f"{s['docs_in']} documents in, {s['docs_kept']} kept ({s['docs_train']} train, "
              f"{s['docs_heldout']} held-out); dropped: {s.get('dropped') or {}}; "
              f"{s.get('files_failed', 0)} file(s) failed; PII replaced: {s.get('pii') or {}}; "
              f"report: {out / 'report.json'} and {out / 'report.html'}; dataset {art.id}")
    emit(summary, as_json, render)
    if summary.get("files_failed"):
        raise typer.Exit(1)
