"""`watt lineage`: from any artifact back to the documents and the foundation it came from."""

from __future__ import annotations

import re

from wattlm.registry import Registry


def lineage_chain(registry: Registry, ref: str) -> dict:
    """The artifact, its ancestors (oldest first) with parents, recipe and metrics, and its exports."""
    target = registry.get(ref)
    chain = [
        {"id": a.id, "name": a.name, "kind": a.kind, "tier": a.tier, "format": a.format,
         "parents": [{"id": pid, "role": role} for pid, role in a.parents], "metrics": a.metrics,
         "recipe": a.recipe, "path": str(a.path)}
        for a in registry.ancestors(target.id)
    ]
    exports = [{"id": a.id, "name": a.name, "metrics": a.metrics} for a in registry.children(target.id) if a.kind == "export"]
    return {"artifact": target.id, "chain": chain, "exports": exports}


def _brief_metrics(metrics: dict) -> str:
    parts = []
    for key, value in metrics.items():
        if key.startswith("ppl:") and isinstance(value, dict):
            parts.append(f"ppl[{key[4:].split('@')[0]}]={value.get('ppl', 0):.2f}")
        elif re.fullmatch(r"(mc|qa):[^:]+:[a-z0-9_]+", key) and isinstance(value, (int, float)):
            parts.append(f"{key}={value:.1f}")  # task scores, in points (wattlm.eval)
        elif key in ("train_tokens", "train_loss_end", "docs_in", "docs_kept", "size_mb", "decode_tok_s", "greedy_match"):
            parts.append(f"{key}={value}")
    return "; ".join(parts)


def render_lineage(payload: dict) -> None:
    from rich.console import Console
    from rich.tree import Tree

    by_id = {a["id"]: a for a in payload["chain"]}
    from rich.markup import escape

    def label(a: dict) -> str:
        tier = f" {a['tier']}" if a["tier"] else ""
        metrics = escape(_brief_metrics(a["metrics"]))
        return f"[bold]{a['name']}[/] ({a['id']}, {a['kind']}{tier}, {a['format']})" + (f"\n  {metrics}" if metrics else "")

    def grow(node, artifact_id: str, role: str = "") -> None:
        a = by_id[artifact_id]
        branch = node.add((f"[dim]{role}:[/] " if role else "") + label(a))
        for parent in a["parents"]:
            grow(branch, parent["id"], parent["role"])

    root = Tree("lineage (newest first, parents below)")
    grow(root, payload["artifact"])
    for export in payload["exports"]:
        root.add(f"export: {export['name']} ({export['id']}) {escape(_brief_metrics(export['metrics']))}")
    Console().print(root)
