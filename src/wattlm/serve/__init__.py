"""wattlm.serve: an OpenAI-compatible API over registered models.

Three layers, as in vLLM: `routes` (HTTP) -> `serving` + `protocol` (OpenAI semantics) -> `Engine`
(a backend). Only `llamacpp`, `batching` and `hf_engine` import a backend, and only when an engine is built.
"""

from importlib import import_module

# Lazy exports (PEP 562): `watt --help` mounts the serve command without importing FastAPI or llama.cpp.
_EXPORTS = {
    "create_app": "wattlm.serve.app",
    "ChatTurn": "wattlm.serve.engine",
    "Engine": "wattlm.serve.engine",
    "GenerationChunk": "wattlm.serve.engine",
    "NoChatTemplate": "wattlm.serve.engine",
    "PromptTooLong": "wattlm.serve.engine",
    "SamplingParams": "wattlm.serve.engine",
    "LlamaCppEngine": "wattlm.serve.llamacpp",
    "LlamaCppBatchEngine": "wattlm.serve.batching.engine",
    "TransformersEngine": "wattlm.serve.hf_engine",
    "EngineOverloaded": "wattlm.serve.engine",
    "running_server": "wattlm.serve.server",
    "serve": "wattlm.serve.server",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'wattlm.serve' has no attribute {name!r}")


__all__ = [
    "ChatTurn",
    "Engine",
    "EngineOverloaded",
    "GenerationChunk",
    "LlamaCppBatchEngine",
    "LlamaCppEngine",
    "NoChatTemplate",
    "PromptTooLong",
    "SamplingParams",
    "TransformersEngine",
    "create_app",
    "running_server",
    "serve",
]
