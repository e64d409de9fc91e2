"""`watt data ...`: the data stage's commands (a sub-app the main CLI mounts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from wattlm.cli_common import AsJson, Home, NarrowSafeHelp, Quiet, emit, registry_from

data_app = typer.Typer(help="Build clean corpora from raw documents.", no_args_is_help=True)


@data_app.command("build", cls=NarrowSafeHelp)
def data_build(
    inputs: Annotated[list[Path], typer.Argument(help="Files or folders of raw documents.")],
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="Also copy the registered shards and report.json to this folder.")] = None,
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
    executor: Annotated[str, typer.Option(help="Where shards run: local (process pool) or ray.")] = "local",
    quality_model: Annotated[Optional[Path], typer.Option(help="Quality classifier from `watt data train-quality`.")] = None,
    quality_threshold: Annotated[float, typer.Option(help="Minimum quality score to keep a document.")] = 0.5,
    eval_set: Annotated[Optional[list[Path]], typer.Option(
        "--eval-set", help="Eval set (JSONL or text) to decontaminate against; repeat for several.")] = None,
    perplexity_model: Annotated[Optional[str], typer.Option(
        help="GGUF file or packaged model name for the perplexity filter (off by default).")] = None,
    max_perplexity: Annotated[float, typer.Option(help="Drop documents above this perplexity.")] = 1000.0,
    config_file: Annotated[Optional[Path], typer.Option(
        "--config", help="YAML data settings (a recipe, or its data section: `steps:` or flat keys); "
        "used instead of the setting options above.")] = None,
    home: Home = None, as_json: AsJson = False, quiet: Quiet = False,
) -> None:
    """Clean, deduplicate, scrub and split documents into JSONL shards, report.json and report.html;
    register the dataset (an unchanged rebuild of the same bytes and settings is found, not redone)."""
    import json
    import shutil

    from wattlm.data.config import DataConfig, load_data_config
    from wattlm.data.stage import build_dataset

    if output_format not in ("jsonl", "parquet"):
        raise typer.BadParameter(f"{output_format!r}: expected jsonl or parquet", param_hint="--format")
    if executor not in ("local", "ray"):
        raise typer.BadParameter(f"{executor!r}: expected local or ray", param_hint="--executor")
    if config_file is not None:
        config = load_data_config(config_file)
    else:
        config = DataConfig(heldout_fraction=heldout_fraction, seed=seed, min_chars=min_chars, scrub_pii=pii,
                            near_dedup=near_dedup, near_dup_threshold=near_dup_threshold,
                            quality_filters=quality_filters, output_format=output_format, workers=workers,
                            executor=executor, quality_model=quality_model, quality_threshold=quality_threshold,
                            eval_sets=eval_set or [], perplexity_model=perplexity_model, max_perplexity=max_perplexity)
    default_name = out.resolve().name if out is not None else f"{Path(inputs[0]).resolve().name}-corpus"
    art, reused = build_dataset(registry_from(home), inputs, config.with_paths_under(Path.cwd()),
                                name or default_name, progress=not quiet)
    if out is not None:  # the registered folder stays the source of truth; `--out` gets a copy
        for split in ("train", "heldout"):  # no stale shards of an earlier build beside the new ones
            shutil.rmtree(out / split, ignore_errors=True)
        shutil.copytree(art.path, out, dirs_exist_ok=True)
    folder = out if out is not None else art.path
    summary = json.loads((art.path / "report.json").read_text(encoding="utf-8"))
    summary["artifact_id"], summary["reused"] = art.id, reused

    def render(s):
        print(f"{s['docs_in']} documents in, {s['docs_kept']} kept ({s['docs_train']} train, "
              f"{s['docs_heldout']} held-out); dropped: {s.get('dropped') or {}}; "
              f"{s.get('files_failed', 0)} file(s) failed; PII replaced: {s.get('pii') or {}}; "
              f"report: {folder / 'report.json'} and {folder / 'report.html'}; dataset {art.id}"
              f"{' (reused)' if s['reused'] else ''}")
    emit(summary, as_json, render)
    if summary.get("files_failed"):
        raise typer.Exit(1)


@data_app.command("train-quality")
def data_train_quality(
    out: Annotated[Path, typer.Option("--out", help="Model file to write (.npz: numbers only, no pickle); its card goes beside it (.json).")],
    examples: Annotated[Optional[Path], typer.Option(
        help="JSONL of labelled examples: {text, label}; label 'high' (or 'good') is the class kept, any others "
        "(low, ad, ...) are dropped.")] = None,
    good: Annotated[Optional[Path], typer.Option(help="Folder of good documents (label 'good').")] = None,
    bad: Annotated[Optional[Path], typer.Option(help="Folder of bad documents (label 'bad').")] = None,
    text_field: Annotated[str, typer.Option(help="Text field of the JSONL examples.")] = "text",
    label_field: Annotated[str, typer.Option(help="Label field of the JSONL examples.")] = "label",
    heldout: Annotated[float, typer.Option(help="Share of examples held out to measure precision/recall.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the held-out split and the solver.")] = 0,
    as_json: AsJson = False,
) -> None:
    """Fit the quality classifier (hashed character n-grams + logistic regression) from labelled examples,
    print held-out precision/recall, and save it for `quality_model:` / `--quality-model`."""
    from wattlm.data.classifier_model import train_quality_model
    from wattlm.data.labelled import read_examples

    if not 0.0 < heldout < 0.5:
        raise typer.BadParameter(f"{heldout}: expected 0 < x < 0.5", param_hint="--heldout")
    texts, labels = read_examples(examples, good, bad, text_field, label_field)
    card = train_quality_model(texts, labels, out, seed=seed, heldout=heldout)
    card["path"] = str(out)

    def render(c):
        metrics = c["heldout"]
        print(f"{c['examples']} examples {c['labels']}; held out {metrics['heldout_examples']}, "
              f"accuracy {metrics['accuracy']:.3f}")
        for label, row in metrics["per_label"].items():
            print(f"  {label:>8}: precision {row['precision']:.3f}  recall {row['recall']:.3f}  (n={row['support']})")
        keep = metrics["keep"]
        print(f"  keep ('{c['positive_label']}' score >= {keep['threshold']}): precision {keep['precision']:.3f}  "
              f"recall {keep['recall']:.3f}")
        print(f"model: {c['path']} (card: {Path(c['path']).with_suffix('.json')})")
    emit(card, as_json, render)
