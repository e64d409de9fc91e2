"""Run an app with uvicorn, in the foreground (`watt serve`) or in a background thread (tests, evals)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fastapi import FastAPI


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve until interrupted. Loopback by default: exposing a model is the caller's explicit choice."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level=log_level)


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
