"""Typed settings of a knowledge base (the future `knowledge:` section of a recipe)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class KbConfig(BaseModel):
    """How documents become chunks and how chunks are found; every field is documented once, here."""

    model_config = ConfigDict(extra="forbid")

    max_chars: int = Field(
        320, ge=40, description="A chunk holds at most about this many characters (e5-small reads 512 tokens; "
        "a Chinese character is about one token, and short chunks make citations precise)."
    )
    overlap_chars: int = Field(
        80, ge=0, description="A chunk cut inside a section starts with the previous chunk's last sentences, "
        "up to this many characters, so a rule split across two chunks is whole in one of them."
    )
    min_chars: int = Field(5, ge=1, description="A piece shorter than this, cut from a longer section, is dropped.")
    embed_batch: int = Field(
        16, ge=1, description="Passages embedded per batch; each batch is saved, so an interrupted build resumes."
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant: score = sum of 1 / (k + rank).")
    candidates: int = Field(50, ge=1, description="Hits each retriever contributes before fusion.")
    superseded_penalty: float = Field(
        0.5, ge=0.0, le=1.0, description="A superseded chunk's fused score is multiplied by this, so documents in "
        "force rank first; it is still found (and flagged) when nothing in force matches."
    )

    def cache_settings(self) -> dict[str, object]:
        """What the KB's content depends on (retrieval-time knobs are read at search time, not baked in)."""
        return self.model_dump(include={"max_chars", "overlap_chars", "min_chars"})
