"""The table `watt run` prints at the end: what went in, what came out, and where it is."""

from __future__ import annotations


def print_summary(summary: dict, console) -> None:
    from rich.table import Table

    data, train, scores = summary["data"], summary["train"], summary["scores"]
    table = Table(title=f"wattlm run: {summary['recipe']} ({summary['seconds']} s)", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
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
    for gate in summary.get("gates", []):
        table.add_row(f"gate {gate['metric']}", ("pass: " if gate["passed"] else "FAIL: ") + gate["message"])
    for export in summary.get("exports", []):
        ppl = f"domain ppl {export['ppl']:.2f}, " if export.get("ppl") else ""
        table.add_row(f"GGUF {export.get('quant')}", f"{export.get('size_mb')} MB, {ppl}{export.get('decode_tok_s')} tok/s, "
                      f"greedy {export.get('greedy_match')}/{export.get('greedy_total')} = transformers; {export['path']}")
    table.add_row("industry model", summary["model_path"])
    table.add_row("report", f"{summary['report_html']} (+ report.json)")
    reused = [k for k, v in summary.get("reused", {}).items() if v]
    table.add_row("reused stages", ", ".join(reused) or "none")
    console.print(table)
