"""Typed configuration of the data stage (the `data:` section of a recipe)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Settings that change how fast the data stage runs, never what it writes: cache keys leave them out.
EXECUTION_FIELDS = frozenset({"workers", "executor", "ray_address"})


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
    split_bytes: int = Field(
        4 * 2**20, ge=1024, description="JSONL and text files larger than this are cut into line-aligned byte ranges "
        "of about this size, read by different workers. JSONL record ids are unchanged; a text file's piece "
        "is a document of its own (source file.txt@<byte offset>)."
    )
    executor: Literal["local", "ray"] = Field(
        "local", description="Where the shards run: `local` (a process pool of `workers`) or `ray` (Ray tasks; "
        "a local Ray with `workers` CPUs, or the cluster at `ray_address`). Same shards, markers and output."
    )
    ray_address: str | None = Field(
        None, description="Address of a running Ray cluster (e.g. ray://head:10001 or auto); None starts a local one."
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
    # Learned and reference-based filters (off unless configured).
    quality_model: Path | None = Field(
        None, description="Quality classifier made by `watt data train-quality` (a .joblib file); documents scoring "
        "below quality_threshold are dropped (quality_classifier)."
    )
    quality_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="Minimum quality score (the classifier's probability of 'high'/'good')."
    )
    eval_sets: list[Path] = Field(
        default_factory=list, description="Eval sets to decontaminate against: JSONL (lm-eval-harness style docs; "
        "question/choices/answer/context... fields) or text files. A document sharing a long n-gram with any item "
        "is dropped (eval_contamination)."
    )
    contamination_words: int = Field(
        13, ge=4, description="Word n-gram length for Latin text (GPT-3's 13-gram overlap test)."
    )
    contamination_chars: int = Field(
        25, ge=8, description="Character n-gram length for Chinese text (hanzi only; about 13 words of Chinese)."
    )
    perplexity_model: str | None = Field(
        None, description="GGUF file, or a packaged model name (smollm2-135m, gemma3-270m), that scores each "
        "document's perplexity with llama.cpp; None = no perplexity filter."
    )
    max_perplexity: float = Field(
        1000.0, gt=1.0, description="Documents above this perplexity under perplexity_model are dropped (perplexity)."
    )
    perplexity_tokens: int = Field(
        256, ge=16, description="Tokens of the start of each document that are scored (cost grows with it)."
    )

    def referenced_files(self) -> list[Path]:
        """Files whose *content* the output depends on (a path alone says nothing about a retrained model)."""
        files = [self.quality_model] if self.quality_model is not None else []
        files += self.eval_sets
        if self.perplexity_model is not None and self.perplexity_model.endswith(".gguf"):
            files.append(Path(self.perplexity_model))
        return files

    def cache_settings(self) -> dict[str, object]:
        """What a data cache key should hash: the settings that change the output, plus the content of the
        files they name (sha256), so a retrained quality model or an edited eval set invalidates the key."""
        from wattlm.data.quality_model import file_sha256

        settings = self.model_dump(mode="json", exclude=set(EXECUTION_FIELDS))
        settings["file_sha256"] = {str(path): file_sha256(path) if path.is_file() else None
                                   for path in self.referenced_files()}
        return settings

    def with_paths_under(self, base: Path) -> DataConfig:
        """A copy with relative file fields resolved against `base` (a recipe's folder)."""
        def resolve(path: Path) -> Path:
            return path if path.is_absolute() else (base / path).resolve()

        update: dict[str, object] = {"eval_sets": [resolve(path) for path in self.eval_sets]}
        if self.quality_model is not None:
            update["quality_model"] = resolve(self.quality_model)
        if self.perplexity_model is not None and self.perplexity_model.endswith(".gguf"):
            update["perplexity_model"] = str(resolve(Path(self.perplexity_model)))
        return self.model_copy(update=update)
