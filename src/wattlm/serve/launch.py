"""`watt serve`: resolve registry models to GGUF files, build engines, run the API."""

from __future__ import annotations

from pathlib import Path

from wattlm.errors import WattError
from wattlm.registry import Artifact, Registry


def served_file(registry: Registry, ref: str) -> tuple[Artifact, Path]:
    """The GGUF a model name/id is served from: the export itself, a GGUF model, or a model's best export."""
    from wattlm.export.stage import best_export
    from wattlm.models.store import resolve_model

    try:
        art = registry.get(ref, kind="export")
    except WattError:
        art = resolve_model(registry, ref)
    if art.format == "gguf":
        return art, art.path / art.meta["file"]
    export = best_export(registry, art)
    if export is None:
        raise WattError(f"model {art.name} ({art.id}) has no GGUF export yet; run `watt export --model {art.name}`")
    return art, export.path / export.meta["file"]


def model_card(registry: Registry, art: Artifact, gguf: Path) -> dict:
    parent = next((pid for pid, role in art.parents if role == "parent"), None)
    return {"id": art.name, "artifact_id": art.id, "tier": art.tier, "parent": parent, "gguf": gguf.name,
            "created": int(art.created)}


def launch(registry: Registry, refs: list[str], host: str = "127.0.0.1", port: int = 8000, n_ctx: int = 2048) -> None:
    from wattlm.serve import LlamaCppEngine, create_app, serve

    engines, cards = {}, []
    for ref in refs:
        art, gguf = served_file(registry, ref)
        engines[art.name] = LlamaCppEngine(gguf, n_ctx=n_ctx, name=art.name)
        cards.append(model_card(registry, art, gguf))
    print(f"serving {', '.join(engines)} on http://{host}:{port}/v1", flush=True)
    serve(create_app(engines, cards), host=host, port=port)
