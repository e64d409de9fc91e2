"""`watt serve`: the serving stage's command (mounted by the main CLI)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from wattlm.cli_common import AsJson, Home, emit, registry_from
from wattlm.engines.table import ENGINES, check_flash_attn, llama_cpp_engines
from wattlm.errors import WattError


def engine_name(value: str) -> str:
    """`--engine`: a name in the engine table (read when the option is parsed, so new rows count)."""
    if value not in ENGINES:
        raise typer.BadParameter(f"'{value}' is not an engine; choose one of: {', '.join(ENGINES)}")
    return value


ENGINE_HELP = "; ".join(f"{name}: {spec.summary}" for name, spec in ENGINES.items()) + "."


class Switch(str, Enum):
    """An on/off option spelled as llama.cpp spells its own (`-fa on`)."""

    on = "on"
    off = "off"


FLASH_ATTN_HELP = (f"llama.cpp's flash-attention kernel ({', '.join(llama_cpp_engines())} engines): faster on CPU, "
                   "but greedy text differs from the default kernels'.")


def serve_command(
    model: Annotated[list[str] | None, typer.Option("--model", help="Model or export name/id (repeatable).")] = None,
    host: Annotated[str, typer.Option(envvar="WATT_HOST", help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="WATT_PORT", help="Port.")] = 8000,
    n_ctx: Annotated[int, typer.Option(help="Context length of each request.")] = 2048,
    engine: Annotated[
        str, typer.Option(parser=engine_name, metavar="[" + "|".join(ENGINES) + "]", help=ENGINE_HELP)
    ] = "batch",
    max_seqs: Annotated[int, typer.Option(min=1, help="Requests decoded together (batch engine).")] = 8,
    max_waiting: Annotated[
        int, typer.Option(min=0, help="Requests queued beyond max-seqs before answering 503 (batch engine).")
    ] = 32,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for llama.cpp (default: its own).")] = None,
    flash_attn: Annotated[
        Switch, typer.Option("--flash-attn", envvar="WATT_FLASH_ATTN", help=FLASH_ATTN_HELP)
    ] = Switch.off,
    max_request_bytes: Annotated[
        int, typer.Option(min=1, help="Largest request body accepted; bigger ones get 413.")
    ] = 1 << 20,
    max_tokens: Annotated[
        int | None, typer.Option(min=1, help="Cap on a request's max_tokens (default: the context length).")
    ] = None,
    request_timeout: Annotated[
        float | None, typer.Option(min=0.0, help="Seconds before a request is aborted (0: never).")
    ] = 300.0,
    keep_alive: Annotated[
        float | None, typer.Option(min=0.0, envvar="WATT_KEEP_ALIVE",
                                   help="Unload a model idle this many seconds; the next request reloads it "
                                        "(default/0: keep models loaded).")
    ] = None,
    load_on_demand: Annotated[
        bool, typer.Option(help="Load any registry model a request names in its `model` field.")
    ] = False,
    max_loaded: Annotated[
        int | None, typer.Option(min=1, envvar="WATT_MAX_LOADED",
                                 help="Most models loaded at once; loading one more unloads the least recently used "
                                      "idle one (default with --load-on-demand: 4; otherwise no cap).")
    ] = None,
    lora: Annotated[
        list[str] | None, typer.Option("--lora", help="NAME=ADAPTER: serve a LoRA adapter over the first --model as model "
                                       "NAME (repeatable): a llama.cpp .gguf adapter (batch engine) or a PEFT "
                                       "adapter folder (vllm engine).")
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Allow a non-loopback --host while no API key exists (anyone who can connect "
                                "may use the models) and skip the Host-header check.")
    ] = False,
    kb: Annotated[
        str | None, typer.Option("--kb", help="Ground chat answers in this knowledge base (name or id): retrieve, "
                                 "answer from the passages with [n] citations, or refuse. Requests may send "
                                 "\"knowledge\": false or pick another KB.")
    ] = None,
    kb_k: Annotated[int, typer.Option("--kb-k", min=1, max=20, help="Passages retrieved per grounded answer.")] = 3,
    closed_book_guard: Annotated[
        bool, typer.Option("--closed-book-guard/--no-closed-book-guard",
                           help="Answers of task-tier models without grounding: replace one that repeats the "
                                "question or is debris by the refusal (flagged `refused` on the message).")
    ] = True,
    replicas: Annotated[
        int, typer.Option(min=1, envvar="WATT_REPLICAS",
                          help="Engine replicas per model behind this endpoint, through Ray Serve (the "
                               "serve-ray extra); requests go to the less busy one. 1: no Ray.")
    ] = 1,
    ray_address: Annotated[
        str | None, typer.Option(envvar="WATT_RAY_ADDRESS",
                                 help="Deploy the replicas on this Ray cluster ('auto', 'ray://head:10001'); "
                                      "default: a private local Ray, stopped with the server.")
    ] = None,
    home: Home = None,
) -> None:
    """Serve models through an OpenAI-compatible API (llama.cpp on the exported GGUF)."""
    from wattlm.serve.auth import check_bind
    from wattlm.serve.keys import KeyStore
    from wattlm.serve.launch import launch
    from wattlm.serve.limits import Limits

    check_flash_attn(engine, flash_attn is Switch.on)  # a no-op option would mislead: refused before anything starts
    registry = registry_from(home)
    check_bind(host, KeyStore.of_home(registry.home).auth_required(), insecure)  # before any model loads

    limits = Limits(max_request_bytes=max_request_bytes, max_tokens=max_tokens,
                    request_timeout=request_timeout or None)
    if not model and not load_on_demand:
        raise WattError("give at least one --model, or --load-on-demand to load models as requests name them")
    loras = {}
    for item in lora or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise WattError(f"--lora '{item}' must be NAME=PATH (e.g. --lora grid-qa=adapters/qa.gguf)")
        loras[name] = Path(path)
    options = dict(host=host, port=port, n_ctx=n_ctx, engine=engine, max_seqs=max_seqs, max_waiting=max_waiting,
                   n_threads=threads, flash_attn=flash_attn is Switch.on, limits=limits,
                   keep_alive=keep_alive or None, load_on_demand=load_on_demand, loras=loras, insecure=insecure,
                   kb=kb, kb_k=kb_k, max_loaded=max_loaded, closed_book_guard=closed_book_guard)
    replica_settings = replica_options(replicas, ray_address, options)
    if replica_settings is None:
        launch(registry, model or [], **options)
        return
    from wattlm.serve.replicas.cluster import ReplicaCluster, serve_log_file

    with ReplicaCluster(replica_settings, serve_log_file(registry.home), models=len(model or [])) as cluster:
        launch(registry, model or [], replicas=cluster, **options)


def replica_options(replicas: int, ray_address: str | None, options: dict):
    """`ReplicaSettings` for --replicas/--ray-address, or None for the server without Ray (one replica, no
    address); options that replicas do not support yet are refused here, before Ray starts."""
    from wattlm.serve.replicas.options import ReplicaSettings, require_ray_serve

    settings = ReplicaSettings(replicas=replicas, ray_address=ray_address or None)
    if not settings.uses_ray:
        return None
    refused = [flag for flag, value in (("--load-on-demand", options["load_on_demand"]),
                                        ("--keep-alive", options["keep_alive"])) if value]
    if refused:
        raise WattError(f"{', '.join(refused)} cannot be combined with --replicas/--ray-address yet: replicas are "
                        "deployed once, at start (docs/scale-out.md)")
    if options["loras"] and options["engine"] != "batch":  # replicas hold llama.cpp adapters (GGUF) only
        raise WattError(f"--lora with --replicas/--ray-address needs the batch engine, not '{options['engine']}'")
    require_ray_serve()  # one line naming the extra, before any model loads
    return settings


# ---- watt keys -----------------------------------------------------------------------------------

keys_app = typer.Typer(help="API keys for `watt serve` (required once a key was created, until `watt keys auth off`).",
                       no_args_is_help=True)


def _key_store(home):
    from wattlm.serve.keys import KeyStore

    return KeyStore.of_home(registry_from(home).home)  # opening the registry creates the workspace


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="A name for the key (who or what uses it).")],
    rate_limit: Annotated[
        str | None, typer.Option("--rate-limit", help="Requests allowed per key, e.g. 60/min, 2/s, 1000/h.")
    ] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    from wattlm.serve.keys import parse_rate_limit

    limit = parse_rate_limit(rate_limit) if rate_limit is not None else None
    key, record = _key_store(home).create(name, limit)
    payload = {**record.to_dict(), "key": key}

    def render(row: dict) -> None:
        limit_text = f", {row['rate_limit']:g} requests/min" if row["rate_limit"] else ""
        print(f"created key '{row['name']}'{limit_text}. Store it now; it cannot be shown again:")
        print(row["key"])

    emit(payload, as_json, render)


@keys_app.command("list")
def keys_list(home: Home = None, as_json: AsJson = False) -> None:
    """List keys (name, prefix, created, revoked, rate limit); the keys themselves are not stored."""
    rows = [record.to_dict() for record in _key_store(home).list()]

    def render(rows: list[dict]) -> None:
        if not rows:
            print("no API keys: the server answers without one (`watt keys create NAME` to require keys)")
            return
        from datetime import datetime

        def when(stamp: float | None) -> str:
            return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M") if stamp else ""

        for row in rows:
            state = f"revoked {when(row['revoked'])}" if row["revoked"] else "active"
            limit_text = f"{row['rate_limit']:g}/min" if row["rate_limit"] else "unlimited"
            print(f"{row['name']}\t{row['prefix']}...\tcreated {when(row['created'])}\t{limit_text}\t{state}")

    emit(rows, as_json, render)


@keys_app.command("auth")
def keys_auth(
    mode: Annotated[str | None, typer.Argument(help="on: require keys; off: open again (only with no active key). "
                                               "Without it: print the mode.")] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Show or set whether the server requires keys. Once a key was created it stays `on`, even after
    the last key is revoked, until `watt keys auth off`."""
    store = _key_store(home)
    if mode is not None:
        store.set_auth_mode(mode)
    emit({"auth": store.auth_mode()}, as_json,
         lambda row: print(f"auth {row['auth']}: " + ("every request needs a key" if row["auth"] == "on"
                                                      else "the server answers without a key")))


@keys_app.command("revoke")
def keys_revoke(
    ref: Annotated[str, typer.Argument(help="The key's name or its shown prefix (watt-xxxxxxx).")],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Revoke a key; a running server refuses it within seconds (and stays closed without keys)."""
    record = _key_store(home).revoke(ref)
    emit(record.to_dict(), as_json, lambda row: print(f"revoked key '{row['name']}' ({row['prefix']}...)"))
