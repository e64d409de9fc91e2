"""`watt console`: the web console on its own, with no model loaded (models load when the playground names one)."""

from __future__ import annotations

from typing import Annotated

import typer

from wattlm.cli_common import Home, registry_from


def console_command(
    host: Annotated[str, typer.Option(envvar="WATT_HOST", help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="WATT_PORT", help="Port.")] = 8000,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Allow a non-loopback --host while no API key exists (anyone who can "
                                "connect may use the console) and skip the Host-header check.")
    ] = False,
    home: Home = None,
) -> None:
    """Open the web console (models, datasets, evals, playground, knowledge bases, keys) at http://HOST:PORT/."""
    from wattlm.serve.auth import check_bind
    from wattlm.serve.keys import KeyStore
    from wattlm.serve.launch import launch

    registry = registry_from(home)
    check_bind(host, KeyStore.of_home(registry.home).auth_required(), insecure)
    print(f"console on http://{host}:{port}/", flush=True)
    launch(registry, [], host=host, port=port, load_on_demand=True, insecure=insecure)
