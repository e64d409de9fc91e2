"""What `watt run` prints at the end: a table of what went in and came out, then where it is.

The paths are kept out of the table: in an 80-column terminal a table column cuts a long path with
`…`, so `watt run` prints them below it, one per line, whole (`summary_paths`).
"""

from __future__ import annotations


def summary_table(summary: dict):
    from rich.table import Table

    data, train, scores = summary["data"], summary["train"], summary["scores"]
    table = Table(title=f"wattlm run: {summary['recipe']} ({summary['seconds']} s)", show_header=False)
    table.add_column("what", style="bold", overflow="fold")
    table.add_column("value", overflow="fold")
    table.add_row("documents in / kept", f"{data.get('docs_in')} / {data.get('docs_kept')} "
                  f"({data.get('docs_train')} train, {data.get('docs_heldout')} held-out)")
    if data.get("dropped"):
        table.add_row("dropped", ", ".join(f"{k}={v}" for k, v in data["dropped"].items()))
    table.add_row("tokens trained", f"{train.get('train_tokens')} in {train.get('train_steps')} steps "
                  f"({train.get('train_tokens_per_s')} tok/s, loss {train.get('train_loss_start')} -> "
                  f"{train.get('train_loss_end')})")
    for label in ("domain", "general"):
        f, i = scores.get("foundation", {}).get(label), scores.get("industry", {}).get(label)
        if f is not None and i is not None:
            table.add_row(f"{label} perplexity", f"foundation {f:.2f} -> industry {i:.2f} ({(i / f - 1) * 100:+.1f}%)")
    by_label: dict[str, list[str]] = {}
    for role, values in scores.items():
        for label, value in values.items():
            grounded = label.startswith(("rag:", "ragmc:"))  # shown below, closed-book beside grounded
            if ":" in label and isinstance(value, (int, float)) and not grounded:  # "<kind>:<set>:<score>"
                by_label.setdefault(label.split(":", 1)[1], []).append(f"{role} {value:.2f}")
    for label, parts in by_label.items():
        table.add_row(label, " -> ".join(parts))
    for label, value in grounded_rows(summary):
        table.add_row(label, value)
    synth = summary.get("synth") or {}
    if synth:
        table.add_row("synthesized QA", f"{synth.get('examples')} from {synth.get('chunks')} chunks "
                      f"({synth.get('examples_per_minute')}/min, grounding {synth.get('mean_grounding')})")
    task_train = summary.get("task_train") or {}
    if task_train:
        table.add_row("task tokens trained", f"{task_train.get('train_tokens')} in {task_train.get('train_steps')} steps "
                      f"(loss {task_train.get('train_loss_start')} -> {task_train.get('train_loss_end')})")
    for gate in summary.get("gates", []):
        table.add_row(f"gate {gate.get('tier', '')} {gate['metric']}".replace("  ", " "),
                      ("pass: " if gate["passed"] else "FAIL: ") + gate["message"])
    for tier, export in export_rows(summary):
        table.add_row(f"GGUF {tier} {export.get('quant')}", export_text(export))
    reused = [k for k, v in summary.get("reused", {}).items() if v]
    table.add_row("reused stages", ", ".join(reused) or "none")
    if summary.get("stage_seconds"):
        table.add_row("stage times", ", ".join(f"{name} {seconds:.0f} s" for name, seconds in summary["stage_seconds"].items()))
    return table


def export_rows(summary: dict) -> list[tuple[str, dict]]:
    """(tier, export) for every GGUF file of the run: the industry tier's, then the task tier's."""
    return [("industry", e) for e in summary.get("exports", [])] + [("task", e) for e in summary.get("task_exports", [])]


def export_text(export: dict) -> str:
    """What one GGUF row says: size, and what its check measured (a file exported without the full
    check has no perplexity or speed)."""
    parts = [f"{export.get('size_mb')} MB"]
    if export.get("ppl"):
        parts.append(f"domain ppl {export['ppl']:.2f}")
    if export.get("decode_tok_s"):
        parts.append(f"{export['decode_tok_s']} tok/s")
    if export.get("greedy_total"):
        parts.append(f"greedy {export.get('greedy_match')}/{export['greedy_total']} = transformers")
    return ", ".join(parts) + (" (served)" if export.get("served") else "")


def summary_paths(summary: dict) -> list[tuple[str, str]]:
    """(label, path) of every file the run made that a user opens next: model, GGUF files, report."""
    exports = [(f"GGUF {tier} {e.get('quant')}", e["path"]) for tier, e in export_rows(summary)]
    model = ("task model" if summary.get("task_train") else "industry model", summary["model_path"])
    report = [("report", summary["report_html"])] + ([("report json", summary["report_json"])] if summary.get("report_json") else [])
    log = [("log", summary["log_file"])] if summary.get("log_file") else []
    return [model, *exports, *report, *log]


def grounded_rows(summary: dict) -> list[tuple[str, str]]:
    """The knowledge base, its retrieval recall@3 / MRR per eval set, and each tier's closed-book vs grounded
    answers (QA char-F1; MC accuracy beside the closed-book `mc` score)."""
    kb = summary.get("knowledge") or {}
    if not kb:
        return []
    rows = [("knowledge base", f"{kb.get('name')} ({kb.get('id')}): {kb.get('chunks')} chunks from "
                               f"{kb.get('sources')} sources")]
    retrieval_done = set()
    for role, sets in (summary.get("grounded") or {}).items():
        for label, values in sets.items():
            kind, name = label.split(":", 1)
            if "recall_at_3" in values and name not in retrieval_done:
                retrieval_done.add(name)
                rows.append((f"retrieval {name}", f"recall@3 {values['recall_at_3']:.1f}, MRR {values.get('mrr', 0):.1f}"))
            if kind == "rag" and "char_f1" in values:
                refusals = f", false refusals {values['false_refusals']:.1f}" if "false_refusals" in values else ""
                rows.append((f"{role} char-F1 {name}", f"closed-book {values.get('closed_char_f1', 0):.2f} -> grounded "
                                                      f"{values['char_f1']:.2f}{refusals}"))
                if "key_recall" in values:
                    rows.append((f"{role} key-char recall {name}", f"closed-book {values.get('closed_key_recall', 0):.2f}"
                                                                  f" -> grounded {values['key_recall']:.2f}"))
            if kind == "ragmc" and "acc" in values:
                closed = (summary.get("scores") or {}).get(role, {}).get(f"mc:{name}:acc")
                before = f"closed-book {closed:.2f} -> " if closed is not None else ""
                rows.append((f"{role} MC acc {name}", f"{before}grounded {values['acc']:.2f}"))
    return rows
