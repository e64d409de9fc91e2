"""`watt serve`: resolve registry models to GGUF files, build engines, run the API."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from wattlm.errors import NotFound, WattError
from wattlm.registry import Artifact, Registry
from wattlm.serve.limits import Limits

EngineKind = Literal["batch", "simple", "transformers"]


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


def served_source(registry: Registry, ref: str, engine: EngineKind) -> tuple[Artifact, Path]:
    """What `engine` loads for `ref`: the GGUF for llama.cpp engines, the HF folder for transformers."""
    if engine != "transformers":
        return served_file(registry, ref)
    from wattlm.models.store import hf_dir, resolve_model

    art = resolve_model(registry, ref)
    return art, hf_dir(registry, art)


def model_card(registry: Registry, art: Artifact, gguf: Path) -> dict:
    parent = next((pid for pid, role in art.parents if role == "parent"), None)
    return {"id": art.name, "artifact_id": art.id, "tier": art.tier, "parent": parent, "gguf": gguf.name,
            "created": int(art.created)}


def build_engine(gguf: Path, name: str, engine: EngineKind = "batch", n_ctx: int = 2048, max_seqs: int = 8,
                 max_waiting: int = 32, n_threads: int | None = None):
    """An engine over one GGUF: continuous batching (`batch`) or one request at a time (`simple`); or
    over a Hugging Face folder (`transformers`: static batches of `max_seqs`)."""
    if engine == "batch":
        from wattlm.serve.batching.engine import LlamaCppBatchEngine

        return LlamaCppBatchEngine(gguf, n_ctx=n_ctx, n_threads=n_threads, name=name, max_seqs=max_seqs,
                                   max_waiting=max_waiting)
    if engine == "transformers":  # `gguf` is then the model's Hugging Face folder
        from wattlm.serve.hf_engine import TransformersEngine

        return TransformersEngine(gguf, name=name, n_ctx=n_ctx, max_batch=max_seqs, max_waiting=max_waiting,
                                  n_threads=n_threads)
    if engine == "simple":
        from wattlm.serve.llamacpp import LlamaCppEngine

        return LlamaCppEngine(gguf, n_ctx=n_ctx, n_threads=n_threads, name=name)
    raise WattError(f"unknown engine '{engine}'; choose batch, simple or transformers")


def lora_loader(base_gguf: Path, base_name: str, name: str, adapter: Path, loaded, n_ctx: int, max_seqs: int,
                max_waiting: int, n_threads: int | None):
    """A loader of the adapter engine `name`: it shares the base engine's weights when that one is loaded
    (`loaded()` gives the engines loaded now)."""
    def load():
        from wattlm.serve.batching.engine import LlamaCppBatchEngine

        base = loaded().get(base_name)
        shared = base if isinstance(base, LlamaCppBatchEngine) else None
        return LlamaCppBatchEngine(base_gguf, n_ctx=n_ctx, n_threads=n_threads, name=name, max_seqs=max_seqs,
                                   max_waiting=max_waiting, lora_path=adapter, share_weights_with=shared)

    return load


def launch(registry: Registry, refs: list[str], host: str = "127.0.0.1", port: int = 8000, n_ctx: int = 2048,
           engine: EngineKind = "batch", max_seqs: int = 8, max_waiting: int = 32, n_threads: int | None = None,
           limits: Limits | None = None, keep_alive: float | None = None, load_on_demand: bool = False,
           loras: dict[str, Path] | None = None) -> None:
    """Serve `refs` (and, with `loras`, each adapter as one more model over the first of them)."""
    from wattlm.serve import create_app, serve
    from wattlm.serve.auth import KeyAuth
    from wattlm.serve.keys import KeyStore

    def loader(gguf: Path, name: str):
        return functools.partial(build_engine, gguf, name, engine, n_ctx, max_seqs, max_waiting, n_threads)

    engines, loaders, cards = {}, {}, []
    served: dict = {}  # the app's ServedModels once built: LoRA loaders look up the loaded base there

    def loaded() -> dict:
        return served["models"].engines() if "models" in served else engines

    for ref in refs:
        art, gguf = served_source(registry, ref, engine)
        loaders[art.name] = loader(gguf, art.name)
        engines[art.name] = loaders[art.name]()  # load now: a bad file fails at start, not on a request
        cards.append(model_card(registry, art, gguf))

    if loras:
        if engine != "batch" or not refs:
            raise WattError("--lora needs the batch engine and a --model to apply the adapters to")
        base_art, base_gguf = served_source(registry, refs[0], engine)
        for adapter_name, adapter in loras.items():
            if adapter_name in loaders:
                raise WattError(f"--lora name '{adapter_name}' is already a served model; choose another")
            if not Path(adapter).is_file():
                raise NotFound(f"LoRA adapter not found: {adapter}")
            loaders[adapter_name] = lora_loader(base_gguf, base_art.name, adapter_name, Path(adapter),
                                                loaded, n_ctx, max_seqs, max_waiting, n_threads)
            engines[adapter_name] = loaders[adapter_name]()
            cards.append({**model_card(registry, base_art, base_gguf), "id": adapter_name, "tier": "task",
                          "parent": base_art.id, "lora": Path(adapter).name})

    def discover(model_id: str):
        # Runs in a request's worker thread: its own registry connection (sqlite objects stay in one thread).
        from wattlm.registry import Registry as ThreadRegistry

        local = ThreadRegistry(registry.home)
        try:
            art, gguf = served_source(local, model_id, engine)
            if art.name != model_id:  # served under its name only: one engine per model, not per alias
                raise WattError(f"model '{model_id}' is registered as '{art.name}'; ask for '{art.name}'")
            return loader(gguf, art.name), model_card(local, art, gguf)
        finally:
            local.close()

    auth = KeyAuth(KeyStore.of_home(registry.home))
    keys_note = "API keys required" if auth.keys_required() else "no API keys exist: open to anyone who can connect"
    extras = []
    if keep_alive is not None:
        extras.append(f"idle models unloaded after {keep_alive:g} s")
    if load_on_demand:
        extras.append("other registry models loaded on demand")
    print(f"serving {', '.join(engines) or 'no model yet'} on http://{host}:{port}/v1 ({engine} engine; {keys_note}"
          f"{''.join('; ' + extra for extra in extras)})", flush=True)
    app = create_app(engines, cards, limits=limits, auth=auth, loaders=loaders, keep_alive=keep_alive,
                     discover=discover if load_on_demand else None)
    served["models"] = app.state.served_models
    serve(app, host=host, port=port)
