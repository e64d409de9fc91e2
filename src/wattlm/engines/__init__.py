"""wattlm.engines: inference engines (llama.cpp, continuous batching, transformers) below the stages.

`base` holds the interface (a small core `Engine` protocol and optional capability protocols),
`params` what flows through it, `table` the one table of engines by name (`ENGINES`) that
`watt serve` and the stages build engines from, and `model_files` which file a registry model is
served from. Only the backend modules import llama_cpp or torch, and only when an engine is built.
"""

from importlib import import_module

# Lazy exports (PEP 562): importing the package costs nothing until a name is used.
_EXPORTS = {
    "ENGINES": "wattlm.engines.table",
    "EngineSettings": "wattlm.engines.table",
    "build_engine": "wattlm.engines.table",
    "Engine": "wattlm.engines.base",
    "EngineOverloaded": "wattlm.engines.base",
    "MissingCapability": "wattlm.engines.base",
    "NoChatTemplate": "wattlm.engines.base",
    "PromptTooLong": "wattlm.engines.base",
    "supports": "wattlm.engines.base",
    "ChatTurn": "wattlm.engines.params",
    "GenerationChunk": "wattlm.engines.params",
    "SamplingParams": "wattlm.engines.params",
    "LlamaCppEngine": "wattlm.engines.llamacpp",
    "LlamaCppBatchEngine": "wattlm.engines.batching.engine",
    "TransformersEngine": "wattlm.engines.hf_engine",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'wattlm.engines' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
