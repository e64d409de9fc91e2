"""`watt serve`: resolve registry models to the files their engine loads, build engines, run the API."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from wattlm.engines.model_files import model_source
from wattlm.engines.table import EngineSettings, build_engine, check_flash_attn, engine_spec
from wattlm.errors import NotFound, WattError
from wattlm.registry import Artifact, Registry
from wattlm.serve.limits import Limits

if TYPE_CHECKING:
    from wattlm.serve.replicas.cluster import ReplicaCluster

DEFAULT_MAX_LOADED = 4  # models loaded at once under --load-on-demand unless --max-loaded says otherwise


def model_card(registry: Registry, art: Artifact, gguf: Path) -> dict:
    parent = next((pid for pid, role in art.parents if role == "parent"), None)
    return {"id": art.name, "artifact_id": art.id, "tier": art.tier, "parent": parent, "gguf": gguf.name,
            "created": int(art.created)}


def lora_loader(base_gguf: Path, base_name: str, name: str, adapter: Path, loaded, n_ctx: int, max_seqs: int,
                max_waiting: int, n_threads: int | None, flash_attn: bool = False):
    """A loader of the adapter engine `name`: it shares the base engine's weights when that one is loaded
    (`loaded()` gives the engines loaded now)."""
    def load():
        from wattlm.engines.batching.engine import LlamaCppBatchEngine

        base = loaded().get(base_name)
        shared = base if isinstance(base, LlamaCppBatchEngine) else None
        return LlamaCppBatchEngine(base_gguf, n_ctx=n_ctx, n_threads=n_threads, name=name, max_seqs=max_seqs,
                                   max_waiting=max_waiting, lora_path=adapter, share_weights_with=shared,
                                   flash_attn=flash_attn)

    return load


def vllm_lora_base(model_dir: Path, name: str, n_ctx: int, max_seqs: int, max_waiting: int, adapters: int):
    """A loader of the vLLM engine the `--lora` adapters run over: one LoRA slot per adapter."""
    def load():
        from wattlm.engines.vllm_engine import VllmEngine

        return VllmEngine(model_dir, name=name, n_ctx=n_ctx, max_seqs=max_seqs, max_waiting=max_waiting,
                          max_loras=adapters)

    return load


def vllm_adapter_loader(base_name: str, name: str, adapter: Path, loaded):
    """A loader of the adapter engine `name` over the loaded vLLM base (vLLM keeps one copy of the weights)."""
    def load():
        base = loaded().get(base_name)
        if base is None:
            raise WattError(f"model '{name}' needs its base '{base_name}' loaded; it is not")
        return base.adapter(name, adapter)

    return load


def launch(registry: Registry, refs: list[str], host: str = "127.0.0.1", port: int = 8000, n_ctx: int = 2048,
           engine: str = "batch", max_seqs: int = 8, max_waiting: int = 32, n_threads: int | None = None,
           flash_attn: bool = False, limits: Limits | None = None, keep_alive: float | None = None,
           load_on_demand: bool = False, loras: dict[str, Path] | None = None, insecure: bool = False,
           kb: str | None = None, kb_k: int = 3, max_loaded: int | None = None, replicas: ReplicaCluster | None = None,
           closed_book_guard: bool = True) -> None:
    """Serve `refs` (and, with `loras`, each adapter as one more model over the first of them); with `kb`,
    chat answers are grounded in that knowledge base unless a request says otherwise. With `replicas` (a
    started `serve.replicas.cluster.ReplicaCluster`) each model is deployed as Ray Serve replicas."""
    from wattlm.console import mount as mount_console
    from wattlm.serve import create_app, serve
    from wattlm.serve.auth import KeyAuth
    from wattlm.serve.closed_book_guard import ClosedBookGuard
    from wattlm.serve.grounding import KnowledgeBases
    from wattlm.serve.keys import KeyStore

    loads = engine_spec(engine).loads  # an unknown engine fails here, before any model is loaded
    check_flash_attn(engine, flash_attn)
    knowledge = KnowledgeBases(registry.home, default=kb, k=kb_k)
    default_kb = knowledge.warm_up()  # an unknown --kb fails here, before any model is loaded

    def loader(gguf: Path, name: str):
        return functools.partial(build_engine, gguf, name, engine, n_ctx, max_seqs, max_waiting, n_threads,
                                 flash_attn)

    engines, loaders, cards = {}, {}, []
    served: dict = {}  # the app's ServedModels once built: LoRA loaders look up the loaded base there

    def loaded() -> dict:
        return served["models"].engines() if "models" in served else engines

    if replicas is not None and loras:  # the replicas load them: a missing file fails here, before Ray deploys
        missing = [str(adapter) for adapter in loras.values() if not Path(adapter).is_file()]
        if missing:
            raise NotFound(f"LoRA adapter not found: {', '.join(missing)}")
    for n, ref in enumerate(refs):
        art, gguf = model_source(registry, ref, loads)
        if loras and engine == "vllm" and n == 0:  # the base of the adapters: built with LoRA slots
            loaders[art.name] = vllm_lora_base(gguf, art.name, n_ctx, max_seqs, max_waiting, len(loras))
            engines[art.name] = loaders[art.name]()
        elif replicas is not None:  # replicas on Ray Serve, deployed once (no loader: never unloaded)
            engines[art.name] = replicas.deploy(gguf, art.name, engine, EngineSettings(
                n_ctx=n_ctx, max_seqs=max_seqs, max_waiting=max_waiting, n_threads=n_threads, flash_attn=flash_attn),
                adapters=loras if n == 0 else None)  # the adapters live in the first model's replicas
        else:
            loaders[art.name] = loader(gguf, art.name)
            engines[art.name] = loaders[art.name]()  # load now: a bad file fails at start, not on a request
        cards.append(model_card(registry, art, gguf))

    if loras:
        if engine not in ("batch", "vllm") or not refs:
            raise WattError("--lora needs the batch or vllm engine and a --model to apply the adapters to")
        base_art, base_gguf = model_source(registry, refs[0], loads)
        for adapter_name, adapter in loras.items():
            if adapter_name in loaders or adapter_name in engines:
                raise WattError(f"--lora name '{adapter_name}' is already a served model; choose another")
            if replicas is not None:  # loaded by each replica of the base beside it (deployed above)
                engines[adapter_name] = engines[base_art.name].adapter(adapter_name)
            elif engine == "vllm":  # a PEFT adapter folder, served by vLLM over the base's weights
                loaders[adapter_name] = vllm_adapter_loader(base_art.name, adapter_name, Path(adapter), loaded)
                engines[adapter_name] = loaders[adapter_name]()
            else:
                if not Path(adapter).is_file():
                    raise NotFound(f"LoRA adapter not found: {adapter}")
                loaders[adapter_name] = lora_loader(base_gguf, base_art.name, adapter_name, Path(adapter),
                                                    loaded, n_ctx, max_seqs, max_waiting, n_threads, flash_attn)
                engines[adapter_name] = loaders[adapter_name]()
            cards.append({**model_card(registry, base_art, base_gguf), "id": adapter_name, "tier": "task",
                          "parent": base_art.id, "lora": Path(adapter).name})

    def discover(model_id: str):
        # Runs in a request's worker thread: its own registry connection (sqlite objects stay in one thread).
        from wattlm.registry import Registry as ThreadRegistry

        local = ThreadRegistry(registry.home)
        try:
            art, gguf = model_source(local, model_id, loads)
            if art.name != model_id:  # served under its name only: one engine per model, not per alias
                raise WattError(f"model '{model_id}' is registered as '{art.name}'; ask for '{art.name}'")
            return loader(gguf, art.name), model_card(local, art, gguf)
        finally:
            local.close()

    auth = KeyAuth(KeyStore.of_home(registry.home))
    keys_note = "API keys required" if auth.keys_required() else "no API keys exist: open to anyone who can connect"
    extras = []
    if flash_attn:  # greedy text differs from the default kernels': say so where the operator looks
        extras.append("llama.cpp flash attention on")
    if keep_alive is not None:
        extras.append(f"idle models unloaded after {keep_alive:g} s")
    if load_on_demand:
        max_loaded = max_loaded or max(DEFAULT_MAX_LOADED, len(engines))  # a request must not load the whole registry
        extras.append("other registry models loaded on demand")
    if max_loaded is not None:
        extras.append(f"at most {max_loaded} models loaded at once")
    if replicas is not None:
        extras.append(replicas.describe())
    if default_kb is not None:
        extras.append(f"answers grounded in knowledge base {default_kb.name} ({default_kb.id}, k={kb_k})")
    print(f"serving {', '.join(engines) or 'no model yet'} on http://{host}:{port}/v1 ({engine} engine; {keys_note}"
          f"{''.join('; ' + extra for extra in extras)})", flush=True)
    app = create_app(engines, cards, limits=limits, auth=auth, loaders=loaders, keep_alive=keep_alive,
                     discover=discover if load_on_demand else None, knowledge=knowledge, max_loaded=max_loaded,
                     closed_book_guard=ClosedBookGuard(enabled=closed_book_guard))
    served["models"] = app.state.served_models
    mount_console(app, registry.home)  # the web console at / (docs/console.md)
    app.state.check_host = not insecure  # read by `serve`: the Host-header check against DNS rebinding
    serve(app, host=host, port=port)
