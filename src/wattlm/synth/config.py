"""Typed synthesis settings: what `watt synth` (and a recipe's `synth:` section) may set."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Kind = Literal["qa", "summary", "extract"]
Style = Literal["auto", "chat", "completion"]


class SynthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kinds: list[Kind] = Field(["qa"], min_length=1, description="What to ask the teacher for, per chunk.")
    max_chunks: int | None = Field(None, ge=1, description="Cap on chunks sent to the teacher (a seeded sample).")
    questions_per_chunk: int = Field(
        2, ge=1, le=16, description="QA pairs asked per chunk (chat: in one reply; completion: one sample each)."
    )
    answer_span: Literal["phrase", "clause"] = Field(
        "phrase", description="Few-shot QA: answers are short phrases of the passage first (quantities, terms), "
        "or whole clauses first.",
    )
    insitu_fallback: bool = Field(
        False, description="Chinese answer-first QA: when the teacher's question is dropped, ask in place instead "
        "(the answer's clause with the answer replaced by 多少/多久/什么; synth/insitu.py).",
    )
    eval_sets: list[Path] = Field(
        [], description="Eval files (JSONL with a question field): pairs whose question is near one of theirs are "
        "dropped as eval_overlap.",
    )
    eval_overlap: float = Field(0.5, gt=0, le=1, description="Character-trigram Jaccard at which a question is "
                                "too near an eval question.")
    temperature: float = Field(0.7, ge=0, le=2, description="Teacher sampling temperature.")
    max_tokens: int = Field(160, ge=8, description="Cap on each teacher reply.")
    concurrency: int = Field(4, ge=1, le=64, description="Teacher requests in flight at once.")
    style: Style = Field(
        "auto", description="chat (instruct teachers, JSON replies) or completion (few-shot, for base models)."
    )
    language: Literal["auto", "zh", "en"] = Field("auto", description="Prompt language; auto: per chunk's script.")
    min_grounding: float = Field(
        0.6, ge=0, le=1, description="Share of the answer's n-grams (CJK bigrams / Latin words) found in its chunk."
    )
    min_question_fit: float = Field(
        0.3, ge=0, le=1,
        description="Answer-first QA: share of the question's n-grams found in the sentence holding its answer.",
    )
    roundtrip: bool = Field(
        False, description="Round-trip check: the teacher answers each kept question from its passage, and the "
        "pair is kept only if that answer matches (character F1, min_roundtrip_f1).",
    )
    min_roundtrip_f1: float = Field(0.5, ge=0, le=1, description="Round-trip: least character F1 between the "
                                    "teacher's answer and the pair's answer.")
    judge: bool = Field(False, description="Also ask the teacher whether each kept answer is supported.")
    chunk_chars_cjk: int = Field(360, ge=50, description="Largest chunk of Chinese text, in characters.")
    chunk_chars_latin: int = Field(1000, ge=100, description="Largest chunk of Latin-script text, in characters.")
    min_chunk_chars_cjk: int = Field(60, ge=1, description="Smaller Chinese chunks are skipped (too little to ask about).")
    min_chunk_chars_latin: int = Field(150, ge=1, description="Smaller Latin-script chunks are skipped.")
    question_chars: tuple[int, int] = Field((4, 200), description="Allowed question length (min, max), characters.")
    answer_chars: tuple[int, int] = Field((2, 300), description="Allowed QA / extraction answer length, characters.")
    summary_chars: tuple[int, int] = Field((15, 600), description="Allowed summary length, characters.")
    dedup_threshold: float = Field(
        0.8, gt=0, le=1, description="Questions whose character-trigram Jaccard reaches this are duplicates."
    )
    heldout_fraction: float = Field(
        0.1, ge=0, lt=1, description="Documents held out when the corpus has no held-out split of its own."
    )
    retries: int = Field(3, ge=0, description="Retries of a teacher request after a 5xx, 429 or timeout.")
    timeout: float = Field(120.0, gt=0, description="Seconds one teacher request may take in all (a deadline, not "
                           "per read: a server trickling its reply is cut off).")
    max_reply_bytes: int = Field(2**20, ge=1024, description="Most bytes read of one endpoint reply; more is `reply_too_large`.")
    refusal_ratio: float = Field(
        0.0, ge=0, le=0.5, description="Share of the train split's QA examples whose answer is the refusal: questions "
        "the corpus cannot answer, closed-book or over a passage that does not hold the answer (synth/refusals.py).",
    )
    refusal_shapes: list[Literal["closed_book", "off_topic_passage", "other_passage"]] = Field(
        ["closed_book", "off_topic_passage", "other_passage"], min_length=1,
        description="Which refusal examples to make (synth/refusals.py): closed-book questions, off-topic "
        "questions over a passage, corpus questions over another document's passage.",
    )
    seed: int = Field(0, description="Seed for the chunk sample and the teacher's sampling.")

    @model_validator(mode="after")
    def _bounds_ordered(self) -> SynthConfig:
        for name in ("question_chars", "answer_chars", "summary_chars"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"{name} must be (min, max) with 0 <= min <= max, got ({low}, {high})")
        return self

    def cache_fields(self) -> dict:
        """Settings that change the output; concurrency and timeouts only change the speed."""
        # refusal_ratio 0 (the default) is left out, so datasets made before it existed keep their keys.
        excluded = {"concurrency", "timeout", "retries", "eval_sets", "max_reply_bytes"}
        if not self.refusal_ratio:
            excluded |= {"refusal_ratio", "refusal_shapes"}
            return self.model_dump(mode="json", exclude=excluded)
        from wattlm.synth.refusals import REFUSALS_VERSION

        # how refusal examples are made is part of the output: a change of it is a new dataset
        return {**self.model_dump(mode="json", exclude=excluded), "refusals_version": REFUSALS_VERSION}
