"""The one table of pipeline steps: the name a recipe's `steps:` list uses -> the Step class.

A new filter is one file (a `Filter` subclass with its `Params`) and one entry here. The default
pipeline, and the translation of the flat recipe keys into steps, are in flat_keys.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from wattlm.data.base import Step
from wattlm.data.dedup.exact import ExactDedup
from wattlm.data.dedup.minhash import NearDedup
from wattlm.data.dedup.paragraphs import ParagraphDedup
from wattlm.data.filters.char_ratios import DigitRatioFilter, EndPunctuationFilter, ScriptRatioFilter, SymbolRatioFilter
from wattlm.data.filters.decontaminate import Decontaminator
from wattlm.data.filters.length import EmptyFilter, MinCharsFilter
from wattlm.data.filters.perplexity import PerplexityFilter
from wattlm.data.filters.quality_classifier import QualityClassifier
from wattlm.data.filters.repetition import RepeatedLinesFilter, RepeatedNgramsFilter
from wattlm.data.transforms.boilerplate import BoilerplateRemover
from wattlm.data.transforms.extract_html import HtmlExtractor
from wattlm.data.transforms.language import LanguageTagger
from wattlm.data.transforms.normalize import Normalizer
from wattlm.data.transforms.page_chrome import PageChromeRemover
from wattlm.data.transforms.pii import PiiScrubber

STEPS: dict[str, type[Step]] = {
    # read phase
    "extract_html": HtmlExtractor,
    "normalize": Normalizer,
    "remove_page_chrome": PageChromeRemover,
    # clean phase
    "remove_boilerplate": BoilerplateRemover,
    "scrub_pii": PiiScrubber,
    "tag_language": LanguageTagger,
    "filter_empty": EmptyFilter,
    "filter_too_short": MinCharsFilter,
    "filter_script_ratio": ScriptRatioFilter,
    "filter_symbol_ratio": SymbolRatioFilter,
    "filter_digit_ratio": DigitRatioFilter,
    "filter_end_punctuation": EndPunctuationFilter,
    "filter_repeated_lines": RepeatedLinesFilter,
    "filter_repeated_ngrams": RepeatedNgramsFilter,
    "decontaminate": Decontaminator,
    "filter_quality_classifier": QualityClassifier,
    "filter_perplexity": PerplexityFilter,
    # dedup phase
    "exact_dedup": ExactDedup,
    "near_dedup": NearDedup,
    "paragraph_dedup": ParagraphDedup,
}


class StepSpec(BaseModel):
    """One step of a pipeline as a config names it: a name from STEPS and its params."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="A step of the STEPS table (docs/data.md lists them).")
    params: dict[str, Any] = Field(
        default_factory=dict, description="The step's settings (its Params model); omitted ones take their defaults."
    )


def step_class(name: str) -> type[Step]:
    try:
        return STEPS[name]
    except KeyError:
        raise ValueError(f"unknown step {name!r}; known steps: {', '.join(sorted(STEPS))}") from None


def build_steps(specs: Sequence[StepSpec]) -> list[Step]:
    """Fresh step objects (with zeroed counts) for the specs, in order."""
    return [step_class(spec.name)(**spec.params) for spec in specs]
