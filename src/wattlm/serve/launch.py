"""`watt serve`: resolve registry models to GGUF files, build engines, run the API."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from wattlm.errors import WattError
from wattlm.registry import Artifact, Registry
from wattlm.serve.limits import Limits

EngineKind = Literal["batch", "simple"]


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


def build_engine(gguf: Path, name: str, engine: EngineKind = "batch", n_ctx: int = 2048, max_seqs: int = 8,
                 max_waiting: int = 32, n_threads: int | None = None):
    """An engine over one GGUF: continuous batching (`batch`) or one request at a time (`simple`)."""
    if engine == "batch":
        from wattlm.serve.batching.engine import LlamaCppBatchEngine

        return LlamaCppBatchEngine(gguf, n_ctx=n_ctx, n_threads=n_threads, name=name, max_seqs=max_seqs,
                                   max_waiting=max_waiting)
    if engine == "simple":
        from wattlm.serve.llamacpp import LlamaCppEngine

        return LlamaCppEngine(gguf, n_ctx=n_ctx, n_threads=n_threads, name=name)
    raise WattError(f"unknown engine '{engine}'; choose batch or simple")


def launch(registry: Registry, refs: list[str], host: str = "127.0.0.1", port: int = 8000, n_ctx: int = 2048,
           engine: EngineKind = "batch", max_seqs: int = 8, max_waiting: int = 32, n_threads: int | None = None,
           limits: Limits | None = None) -> None:
    from wattlm.serve import create_app, serve

    engines, cards = {}, []
    for ref in refs:
        art, gguf = served_file(registry, ref)
        engines[art.name] = build_engine(gguf, art.name, engine, n_ctx, max_seqs, max_waiting, n_threads)
        cards.append(model_card(registry, art, gguf))
    print(f"serving {', '.join(engines)} on http://{host}:{port}/v1 ({engine} engine)", flush=True)
    serve(create_app(engines, cards, limits=limits), host=host, port=port)
