"""Run an app with uvicorn, in the foreground (`watt serve`) or in a background thread (tests, evals)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fastapi import FastAPI

MAX_CONNECTIONS = 256  # open connections + tasks; uvicorn answers 503 beyond (slow-client floods)
KEEP_ALIVE_SECONDS = 5  # idle keep-alive connections are closed after this


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info",
          max_connections: int = MAX_CONNECTIONS) -> None:
    """Serve until interrupted. Loopback by default: exposing a model is the caller's explicit choice.

    While no API key is required, only requests addressed to localhost are answered (DNS rebinding;
    `auth.LoopbackHostOnly`) unless `app.state.check_host` is False (`watt serve --insecure`)."""
    import uvicorn

    from wattlm.serve.auth import LoopbackHostOnly

    auth = _key_auth(app)
    check_host = getattr(app.state, "check_host", True)
    served = LoopbackHostOnly(app, auth) if check_host and auth is not None else app
    uvicorn.run(served, host=host, port=port, log_level=log_level, limit_concurrency=max_connections,
                timeout_keep_alive=KEEP_ALIVE_SECONDS)


def _key_auth(app: FastAPI):
    """The `KeyAuth` the app's key middleware checks with, or None (an app built without keys)."""
    from wattlm.serve.auth import ApiKeyMiddleware

    for middleware in app.user_middleware:
        if middleware.cls is ApiKeyMiddleware:
            return middleware.kwargs.get("auth")
    return None


@contextmanager
def running_server(
    app: FastAPI, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 30.0
) -> Iterator[str]:
    """Serve `app` in a background thread; yield its base URL (`http://host:port`); stop on exit.

    port=0 lets the OS choose a free port, so parallel test runs never collide.
    """
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="wattlm-uvicorn", daemon=True)
    thread.start()
    try:
        if not _wait_until(lambda: server.started or not thread.is_alive(), startup_timeout):
            raise RuntimeError(f"server did not start within {startup_timeout} s")
        if not server.started:
            raise RuntimeError(f"server failed to start on {host}:{port}")
        bound_port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
