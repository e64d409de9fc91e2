"""The one table of engines: `watt serve --engine NAME`, its `--help` and the stages build from it.

A row names the engine class by import path, so reading the table (the CLI does at start-up) imports
no backend; the class is imported when an engine is built. Every engine class has
`from_settings(source, name, settings)`; `loads` says what a registry model resolves to for it (its
GGUF export, or its Hugging Face folder). Adding an engine is one new module and one row here.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from wattlm.engines.base import Engine
from wattlm.errors import WattError


class EngineSettings(BaseModel):
    """How big an engine is; every engine reads what applies to it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_ctx: int = Field(2048, ge=1, description="context window of each request, in tokens")
    max_seqs: int = Field(8, ge=1, description="requests decoded together")
    max_waiting: int = Field(32, ge=0, description="requests queued beyond max_seqs before EngineOverloaded")
    n_threads: int | None = Field(None, ge=1, description="CPU threads (None: the backend's own default)")
    flash_attn: bool = Field(False, description=(
        "llama.cpp's flash-attention kernel on every context of a llama.cpp engine (generation, scoring, "
        "embeddings): faster on CPU, but it rounds differently, so greedy text differs from the default "
        "kernels' (and from `llama_cpp.Llama`'s default); off keeps answers identical to earlier ones"))


@dataclass(frozen=True)
class EngineSpec:
    """One row of `ENGINES`."""

    engine_class: str  # "module:Class"; the class has `from_settings(source, name, settings)`
    loads: Literal["gguf", "hf"]  # what a registry model is served from
    summary: str  # one line for `watt serve --help`

    def build(self, source: Path, name: str, settings: EngineSettings) -> Engine:
        module, _, cls = self.engine_class.partition(":")
        return getattr(import_module(module), cls).from_settings(Path(source), name, settings)


ENGINES: dict[str, EngineSpec] = {
    "batch": EngineSpec("wattlm.engines.batching.engine:LlamaCppBatchEngine", "gguf",
                        "continuous batching on one llama.cpp context (the GGUF export)"),
    "simple": EngineSpec("wattlm.engines.llamacpp:LlamaCppEngine", "gguf",
                         "llama.cpp, one request at a time (the reference the batch engine is tested against)"),
    "transformers": EngineSpec("wattlm.engines.hf_engine:TransformersEngine", "hf",
                               "the Hugging Face model, static batches (models not exported yet)"),
    "vllm": EngineSpec("wattlm.engines.vllm_engine:VllmEngine", "hf",
                       "vLLM on a CUDA GPU over the Hugging Face model (needs the vllm package)"),
}


def engine_spec(kind: str) -> EngineSpec:
    """The table row of `kind`, or an error listing the engines there are."""
    try:
        return ENGINES[kind]
    except KeyError:
        raise WattError(f"unknown engine '{kind}'; choose one of {', '.join(ENGINES)}") from None


def llama_cpp_engines() -> list[str]:
    """The engines that run llama.cpp contexts (they serve the GGUF export)."""
    return [name for name, spec in ENGINES.items() if spec.loads == "gguf"]


def check_flash_attn(engine: str, flash_attn: bool) -> None:
    """Flash attention is a llama.cpp context option: asking another engine for it is an error, not a no-op."""
    if flash_attn and engine_spec(engine).loads != "gguf":
        raise WattError(f"--flash-attn on applies to the llama.cpp engines ({', '.join(llama_cpp_engines())}), "
                        f"not '{engine}'")


def build_engine(source: Path, name: str, engine: str = "batch", n_ctx: int = 2048, max_seqs: int = 8,
                 max_waiting: int = 32, n_threads: int | None = None, flash_attn: bool = False) -> Engine:
    """An engine of kind `engine` over `source` (a GGUF file, or a Hugging Face folder for `hf` engines)."""
    check_flash_attn(engine, flash_attn)
    settings = EngineSettings(n_ctx=n_ctx, max_seqs=max_seqs, max_waiting=max_waiting, n_threads=n_threads,
                              flash_attn=flash_attn)
    return engine_spec(engine).build(source, name, settings)
