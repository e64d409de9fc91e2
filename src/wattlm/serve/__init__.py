"""wattlm.serve: an OpenAI-compatible API over registered models.

Three layers, as in vLLM: `routes` (HTTP) -> `serving` + `protocol` (OpenAI semantics) -> an engine
from `wattlm.engines` (the backends live there, below the stages, so stages such as synth can run
them without HTTP). Nothing here imports a backend; `launch` builds engines through the engine table.
"""

from importlib import import_module

# Lazy exports (PEP 562): `watt --help` mounts the serve command without importing FastAPI or llama.cpp.
_EXPORTS = {
    "create_app": "wattlm.serve.app",
    "running_server": "wattlm.serve.server",
    "serve": "wattlm.serve.server",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'wattlm.serve' has no attribute {name!r}")


__all__ = ["create_app", "running_server", "serve"]
