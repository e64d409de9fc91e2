"""wattlm.serve: an OpenAI-compatible API over registered models.

Three layers, as in vLLM: `routes` (HTTP) -> `serving` + `protocol` (OpenAI semantics) -> `Engine`
(a backend). Only `llamacpp` imports a backend, and only when an engine is built.
"""

from wattlm.serve.app import create_app
from wattlm.serve.engine import ChatTurn, Engine, GenerationChunk, NoChatTemplate, PromptTooLong, SamplingParams
from wattlm.serve.llamacpp import LlamaCppEngine
from wattlm.serve.server import running_server, serve

__all__ = [
    "ChatTurn",
    "Engine",
    "GenerationChunk",
    "LlamaCppEngine",
    "NoChatTemplate",
    "PromptTooLong",
    "SamplingParams",
    "create_app",
    "running_server",
    "serve",
]
