"""From command-line choices to a teacher: an endpoint URL + model name, or a model in the registry."""

from __future__ import annotations

from wattlm.errors import NotFound, WattError
from wattlm.registry import Registry
from wattlm.synth.config import SynthConfig
from wattlm.synth.teachers.base import Teacher


def _registered(registry: Registry, name: str) -> str | None:
    """The artifact id of a served model name, when the endpoint serves one of ours (lineage)."""
    for kind in ("model", "export"):
        try:
            return registry.get(name, kind=kind).id
        except NotFound:
            continue
    return None


def make_teacher(registry: Registry, config: SynthConfig, url: str | None = None, model: str | None = None,
                 local: str | None = None, n_ctx: int = 2048, n_threads: int | None = None) -> Teacher:
    if (url is None) == (local is None):
        raise WattError("give either --teacher-url URL with --teacher-model NAME, or --teacher MODEL")
    if url is not None:
        if not model:
            raise WattError("--teacher-url needs --teacher-model (the model name the endpoint serves)")
        from wattlm.synth.teachers.openai_http import OpenAITeacher

        return OpenAITeacher(url, model, style=config.style, concurrency=config.concurrency, timeout=config.timeout,
                             retries=config.retries, registry_id=_registered(registry, model))
    from wattlm.engines.model_files import served_file
    from wattlm.synth.teachers.local import LocalTeacher

    art, gguf = served_file(registry, local)  # a GGUF model, an export, or a model's best export
    if not gguf.exists():
        raise NotFound(f"GGUF file of teacher {art.name} is missing: {gguf}")
    return LocalTeacher(gguf, art.name, style=config.style, concurrency=config.concurrency, n_ctx=n_ctx,
                        n_threads=n_threads, registry_id=art.id)
