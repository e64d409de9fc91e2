"""Typed configuration of the data stage (the `data:` section of a recipe)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DataConfig(BaseModel):
    """How raw documents become a clean corpus; every field is documented once, here."""

    model_config = ConfigDict(extra="forbid")

    heldout_fraction: float = Field(
        0.1,
        gt=0.0,
        lt=0.5,
        description="Share of documents sent to the held-out split, chosen by a hash of each document id "
        "and the seed (0 < x < 0.5).",
    )
    seed: int = Field(0, description="Salt of the split hash: change it to draw a different held-out set.")
    min_chars: int = Field(
        50, ge=0, description="Documents shorter than this many characters after cleaning are dropped (too_short)."
    )
    to_simplified: bool = Field(True, description="Convert traditional Chinese to simplified with OpenCC (t2s).")
    text_field: str = Field("text", min_length=1, description="Field (JSONL) or column (CSV) holding the text.")
    shard_docs: int = Field(1000, ge=1, description="Maximum number of documents per output shard.")
