"""From command-line choices to a teacher: the table of teacher kinds and the one function that uses it.

`TEACHERS` maps a kind to its builder `(registry, config, spec) -> Teacher`: `openai` (an endpoint URL +
the model name it serves) and `local` (a registered model or export, its GGUF run in-process).
"""

from __future__ import annotations

from wattlm.errors import NotFound, WattError
from wattlm.registry import Registry
from wattlm.synth.config import SynthConfig
from wattlm.synth.teachers.base import Teacher, TeacherBuilder, TeacherSpec


def _registered(registry: Registry, name: str) -> str | None:
    """The artifact id of a served model name, when the endpoint serves one of ours (lineage)."""
    for kind in ("model", "export"):
        try:
            return registry.get(name, kind=kind).id
        except NotFound:
            continue
    return None


def openai_teacher(registry: Registry, config: SynthConfig, spec: TeacherSpec) -> Teacher:
    if not spec.ref:
        raise WattError("an endpoint teacher needs --teacher-url URL (with --teacher-model NAME)")
    if not spec.model:
        raise WattError("--teacher-url needs --teacher-model (the model name the endpoint serves)")
    from wattlm.synth.teachers.openai_http import OpenAITeacher

    return OpenAITeacher(spec.ref, spec.model, style=config.style, concurrency=config.concurrency,
                         timeout=config.timeout, retries=config.retries, registry_id=_registered(registry, spec.model),
                         max_reply_bytes=config.max_reply_bytes)


def local_teacher(registry: Registry, config: SynthConfig, spec: TeacherSpec) -> Teacher:
    if not spec.ref:
        raise WattError("a local teacher needs --teacher MODEL (a registered model or export)")
    from wattlm.engines.model_files import served_file
    from wattlm.synth.teachers.local import LocalTeacher

    art, gguf = served_file(registry, spec.ref)  # a GGUF model, an export, or a model's best export
    if not gguf.exists():
        raise NotFound(f"GGUF file of teacher {art.name} is missing: {gguf}")
    return LocalTeacher(gguf, art.name, style=config.style, concurrency=config.concurrency, n_ctx=spec.n_ctx,
                        n_threads=spec.n_threads, registry_id=art.id)


TEACHERS: dict[str, TeacherBuilder] = {"local": local_teacher, "openai": openai_teacher}


def make_teacher(registry: Registry, config: SynthConfig, url: str | None = None, model: str | None = None,
                 local: str | None = None, n_ctx: int = 2048, n_threads: int | None = None,
                 kind: str | None = None) -> Teacher:
    """The teacher of kind `kind`; without one, `openai` for a URL and `local` for a model name."""
    if kind is None:
        if (url is None) == (local is None):
            raise WattError("give either --teacher-url URL with --teacher-model NAME, or --teacher MODEL")
        kind = "openai" if url is not None else "local"
    if kind not in TEACHERS:
        raise WattError(f"unknown teacher kind {kind!r}: one of {', '.join(TEACHERS)}")
    if url is not None and local is not None:
        raise WattError("give --teacher-url or --teacher, not both")
    spec = TeacherSpec(kind, ref=url if url is not None else local, model=model, n_ctx=n_ctx, n_threads=n_threads)
    return TEACHERS[kind](registry, config, spec)
