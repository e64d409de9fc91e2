"""Typed configuration of the data stage (the `data:` section of a recipe)."""

from __future__ import annotations

from typing import Literal

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
    output_format: Literal["jsonl", "parquet"] = Field(
        "jsonl", description="Shard format: train/shard-00000.jsonl or .parquet (same columns: id, text, source, "
        "lang, chars); both load with HF datasets."
    )
    workers: int = Field(
        1, ge=0, description="Worker processes for the per-document steps (read, extract, normalize, PII, language, "
        "filters); 0 = all cores. The output is identical whatever the number."
    )

    repair_text: bool = Field(
        True, description="Undo UTF-8-read-as-Latin-1 mojibake, strip pinyin glued to hanzi (发(fā) -> 发) and "
        "collapse repeated sentence marks (！！！ -> ！; …… is kept)."
    )
    # Cleaning (see docs/data.md for the order of the steps and why).
    remove_boilerplate: bool = Field(
        True, description="Remove lines repeated across a source group, and fixed Chinese web debris lines."
    )
    boilerplate_min_docs: int = Field(
        3, ge=2, description="A line is boilerplate if it occurs in at least this many documents of its group ..."
    )
    boilerplate_min_share: float = Field(
        0.3, gt=0.0, le=1.0, description="... and in at least this share of the group's documents."
    )
    scrub_pii: bool = Field(
        True, description="Replace ID numbers, phones, bank cards, e-mails and IPs with <PII_*> placeholders."
    )
    # Heuristic quality filters (Gopher / C4 style); defaults keep every genuine sample document.
    quality_filters: bool = Field(True, description="Run the ratio and repetition filters below.")
    min_script_ratio: float = Field(
        0.5, ge=0.0, le=1.0, description="Minimum share of hanzi/letters among visible characters (low_script_ratio)."
    )
    max_symbol_ratio: float = Field(
        0.15, ge=0.0, le=1.0, description="Maximum share of markup symbols such as # | * … (too_many_symbols)."
    )
    max_digit_ratio: float = Field(
        0.3, ge=0.0, le=1.0, description="Maximum share of digits among visible characters (too_many_digits)."
    )
    min_end_punctuation: float = Field(
        0.12, ge=0.0, le=1.0, description="Minimum share of lines ending like a sentence (few_sentence_lines)."
    )
    max_duplicate_lines: float = Field(
        0.3, ge=0.0, le=1.0, description="Maximum share of repeated lines or paragraphs (repeated_lines; Gopher 0.3)."
    )
    max_duplicate_line_chars: float = Field(
        0.2, ge=0.0, le=1.0, description="Maximum share of characters in repeated lines/paragraphs (Gopher 0.2)."
    )
    repetition_scale: float = Field(
        1.0, gt=0.0, description="Multiplier on Gopher's n-gram repetition limits (repeated_ngrams); 1.0 = Gopher."
    )
    # Dedup beyond exact copies.
    near_dedup: bool = Field(True, description="Drop near-duplicates with MinHash LSH (near_duplicate).")
    near_dup_threshold: float = Field(
        0.7, gt=0.0, lt=1.0, description="Estimated Jaccard similarity of shingle sets at which two documents are "
        "near-duplicates (Chinese: 5-character shingles; English: 3-word shingles)."
    )
    near_dup_num_perm: int = Field(128, ge=16, description="MinHash permutations: more is slower and more precise.")
    paragraph_dedup_min_docs: int = Field(
        2, ge=0, description="A paragraph found in at least this many documents is kept in the first only; 0 disables."
    )
    paragraph_min_chars: int = Field(
        30, ge=1, description="Shorter paragraphs (headings, list labels) are never deduplicated."
    )
