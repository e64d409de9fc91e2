"""The flat `data:` keys of earlier recipes (`min_chars: 80`, `near_dedup: false`, ...) as step specs.

Each key sets one param of one step (or, for the switches, whether the step is in the list), so a
recipe written before `steps:` existed builds the same pipeline and the same corpus (tested on
examples/power-grid/raw). With neither `steps:` nor a flat key, a config gets the default pipeline.
"""

from __future__ import annotations

from typing import Any

# Flat key -> (step, param). Keys that only switch a step on or off are in SWITCHES.
PARAMS: dict[str, list[tuple[str, str]]] = {
    "to_simplified": [("normalize", "simplify"), ("decontaminate", "simplify")],
    "repair_text": [("normalize", "repair")],
    "boilerplate_min_docs": [("remove_boilerplate", "min_docs")],
    "boilerplate_min_share": [("remove_boilerplate", "min_share")],
    "min_chars": [("filter_too_short", "min_chars"), ("paragraph_dedup", "min_doc_chars")],
    "min_script_ratio": [("filter_script_ratio", "min_ratio")],
    "max_symbol_ratio": [("filter_symbol_ratio", "max_ratio")],
    "max_digit_ratio": [("filter_digit_ratio", "max_ratio")],
    "min_end_punctuation": [("filter_end_punctuation", "min_share")],
    "max_duplicate_lines": [("filter_repeated_lines", "max_share")],
    "max_duplicate_line_chars": [("filter_repeated_lines", "max_char_share")],
    "repetition_scale": [("filter_repeated_ngrams", "scale")],
    "near_dup_threshold": [("near_dedup", "threshold")],
    "near_dup_num_perm": [("near_dedup", "num_perm")],
    "paragraph_dedup_min_docs": [("paragraph_dedup", "min_docs")],
    "paragraph_min_chars": [("paragraph_dedup", "min_chars")],
    "eval_sets": [("decontaminate", "eval_sets")],
    "contamination_words": [("decontaminate", "word_n")],
    "contamination_chars": [("decontaminate", "char_n")],
    "quality_model": [("filter_quality_classifier", "model")],
    "quality_threshold": [("filter_quality_classifier", "threshold")],
    "perplexity_model": [("filter_perplexity", "model")],
    "max_perplexity": [("filter_perplexity", "max_perplexity")],
    "perplexity_tokens": [("filter_perplexity", "max_tokens")],
}
SWITCHES = ("remove_boilerplate", "scrub_pii", "quality_filters", "near_dedup")
FLAT_KEYS = frozenset(PARAMS) | frozenset(SWITCHES)
QUALITY_FILTERS = ("filter_script_ratio", "filter_symbol_ratio", "filter_digit_ratio", "filter_end_punctuation",
                   "filter_repeated_lines", "filter_repeated_ngrams")


def steps_from_flat_keys(flat: dict[str, Any]) -> list[dict[str, Any]]:
    """The step specs ({name, params}) that the flat keys in `flat` describe; absent keys take defaults."""
    unknown = set(flat) - FLAT_KEYS
    if unknown:
        raise ValueError(f"not flat data keys: {sorted(unknown)}")
    params: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        for step, param in PARAMS.get(key, []):
            params.setdefault(step, {})[param] = value

    def on(switch: str) -> bool:
        return bool(flat.get(switch, True))

    # The order is the pipeline's (docs/data.md says why): clean, then judge cheaply, then judge
    # expensively, then dedup.
    names = ["extract_html", "normalize", "remove_page_chrome"]
    names += ["remove_boilerplate"] if on("remove_boilerplate") else []
    names += ["scrub_pii"] if on("scrub_pii") else []
    names += ["tag_language", "filter_empty", "filter_too_short"]
    names += list(QUALITY_FILTERS) if on("quality_filters") else []
    names += ["decontaminate"] if flat.get("eval_sets") else []
    names += ["filter_quality_classifier"] if flat.get("quality_model") is not None else []
    names += ["filter_perplexity"] if flat.get("perplexity_model") is not None else []
    names += ["exact_dedup"]
    names += ["near_dedup"] if on("near_dedup") else []
    names += ["paragraph_dedup"] if flat.get("paragraph_dedup_min_docs", 2) else []  # 0 switched it off
    return [{"name": name, "params": params.get(name, {})} for name in names]


def default_step_specs() -> list[dict[str, Any]]:
    return steps_from_flat_keys({})
