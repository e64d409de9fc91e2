"""`watt synth`: a teacher model writes grounded SFT examples from a corpus (mounted by the main CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from wattlm.cli_common import AsJson, Home, Quiet, emit, registry_from
from wattlm.errors import WattError


def synth_command(
    data: Annotated[str, typer.Option("--data", help="Corpus dataset name or id, or a folder/file of texts.")],
    name: Annotated[Optional[str], typer.Option(help="Name of the new dataset (default: <corpus>-synth).")] = None,
    teacher_url: Annotated[Optional[str], typer.Option(
        "--teacher-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (key: $WATT_TEACHER_API_KEY).")] = None,
    teacher_model: Annotated[Optional[str], typer.Option("--teacher-model", help="Model name at --teacher-url.")] = None,
    teacher: Annotated[Optional[str], typer.Option(
        "--teacher", help="A registered model/export (its GGUF runs in-process), or gemma3-270m / smollm2-135m.")] = None,
    teacher_kind: Annotated[Optional[str], typer.Option(
        "--teacher-kind", help="A teacher kind of the table (local, openai, ...); default: openai with "
                               "--teacher-url, local with --teacher.")] = None,
    kind: Annotated[Optional[list[str]], typer.Option(
        "--kind", help="qa, summary or extract (repeatable; default qa).")] = None,
    max_chunks: Annotated[Optional[int], typer.Option(min=1, help="Cap on chunks sent to the teacher.")] = None,
    questions: Annotated[int, typer.Option(min=1, help="QA pairs per chunk.")] = 2,
    temperature: Annotated[float, typer.Option(min=0.0, help="Teacher sampling temperature.")] = 0.7,
    max_tokens: Annotated[int, typer.Option(min=8, help="Cap on each teacher reply.")] = 160,
    concurrency: Annotated[int, typer.Option(min=1, help="Teacher requests in flight.")] = 4,
    style: Annotated[str, typer.Option(help="auto, chat (JSON replies) or completion (few-shot, base models).")] = "auto",
    language: Annotated[str, typer.Option(help="Prompt language: auto (per chunk), zh or en.")] = "auto",
    min_grounding: Annotated[float, typer.Option(help="Share of answer n-grams that must occur in the chunk.")] = 0.6,
    roundtrip: Annotated[bool, typer.Option("--roundtrip", help="Keep a pair only if the teacher, asked its question, "
                                            "gives its answer back.")] = False,
    judge: Annotated[bool, typer.Option("--judge", help="Also ask the teacher to confirm each answer.")] = False,
    refusal_ratio: Annotated[float, typer.Option(min=0.0, max=0.5, help="Share of train QA examples whose answer is "
                                                 "the refusal (questions the corpus cannot answer).")] = 0.0,
    threads: Annotated[Optional[int], typer.Option(min=1, help="llama.cpp threads of a local teacher.")] = None,
    home: Home = None, as_json: AsJson = False, quiet: Quiet = False,
) -> None:
    """Synthesize grounded QA / summary / extraction examples from a corpus with a teacher model."""
    from pydantic import ValidationError

    from wattlm.shared.config import describe_validation_error
    from wattlm.synth.config import SynthConfig
    from wattlm.synth.stage import synthesize
    from wattlm.synth.teachers.resolve import make_teacher

    try:
        config = SynthConfig(kinds=kind or ["qa"], max_chunks=max_chunks, questions_per_chunk=questions,
                             temperature=temperature, max_tokens=max_tokens, concurrency=concurrency, style=style,
                             language=language, min_grounding=min_grounding, roundtrip=roundtrip,
                             judge=judge, refusal_ratio=refusal_ratio)
    except ValidationError as exc:
        raise WattError(describe_validation_error(exc, "watt synth options")) from None
    registry = registry_from(home)
    path = Path(data)
    if path.exists():
        from wattlm.data.stage import text_dataset

        corpus = text_dataset(registry, path.resolve(), path.name)
    else:
        corpus = registry.get(data, kind="dataset")
    chosen = make_teacher(registry, config, url=teacher_url, model=teacher_model, local=teacher, n_threads=threads,
                           kind=teacher_kind)
    try:
        art, reused = synthesize(registry, corpus, chosen, config, name=name, progress=not (quiet or as_json))
    finally:
        chosen.close()
    payload = {"id": art.id, "name": art.name, "path": str(art.path), "reused": reused, **art.metrics}
    if (art.path / "rag.jsonl").exists():  # eval labels from held-out documents (synth/rag.py)
        payload["rag_task"] = str(art.path / "rag.jsonl")

    def render(p: dict) -> None:
        verb = "reused" if p["reused"] else "synthesized"
        print(f"{verb} {p['name']} ({p['id']}): {p['examples']} examples, "
              f"{p['examples_per_minute']}/min, mean grounding {p['mean_grounding']}")
        if p["dropped"]:
            print("dropped: " + ", ".join(f"{k}={v}" for k, v in p["dropped"].items()))
        if p["teacher_failures"]:
            print("teacher failures: " + ", ".join(f"{k}={v}" for k, v in p["teacher_failures"].items()))
        if p.get("rag_task"):
            print(f"rag eval file ({p.get('rag_questions')} held-out questions): {p['rag_task']} "
                  "(watt eval run --model M --kb NAME --task it)")
    emit(payload, as_json, render)
