"""Typed settings of a knowledge base (the future `knowledge:` section of a recipe)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

FUSION_FIELDS = ("rrf_k", "bm25_weight", "dense_weight")


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
    rrf_k: int = Field(1, ge=1, description="Reciprocal rank fusion constant: score = sum of weight / (k + rank). "
                       "Small: the first places of each list decide (tuned on a dev set, docs/kb.md).")
    bm25_weight: float = Field(2.0, ge=0.0, description="Weight of the BM25 list in the fusion.")
    dense_weight: float = Field(1.0, ge=0.0, description="Weight of the dense list in the fusion.")
    candidates: int = Field(50, ge=1, description="Hits each retriever contributes before fusion.")
    superseded_penalty: float = Field(
        0.5, ge=0.0, le=1.0, description="A superseded chunk's fused score is multiplied by this, so documents in "
        "force rank first; it is still found (and flagged) when nothing in force matches."
    )

    @classmethod
    def of_kb(cls, stored: dict) -> KbConfig:
        """The settings a KB was built with. One built before weighted fusion stored the old unweighted
        `rrf_k` (60); its fusion settings are today's defaults, as for every KB (they are search-time knobs)."""
        if "bm25_weight" not in stored:
            stored = {key: value for key, value in stored.items() if key not in FUSION_FIELDS}
        return cls(**stored)

    def cache_settings(self) -> dict[str, object]:
        """What the KB's content depends on (retrieval-time knobs are read at search time, not baked in)."""
        return self.model_dump(include={"max_chars", "overlap_chars", "min_chars"})
