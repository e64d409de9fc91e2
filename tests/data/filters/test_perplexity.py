"""The optional perplexity filter on the packaged SmolLM2 GGUF (English reference model)."""

import random
import string

from wattlm.data import DataConfig, build_corpus
from wattlm.data.card import render_card
from wattlm.data.filters.perplexity import PPL_EDGES, _llama, perplexity

from ..helpers import write

PROSE = ("The maintenance crew inspects the substation every morning. They check the transformer oil level, "
         "record the temperature of the windings, and report any unusual noise to the control room operator.")


def gibberish(seed: int) -> str:
    rng = random.Random(seed)
    return " ".join("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 9)))
                    for _ in range(40)) + "."


def test_gibberish_scores_far_above_prose(smollm2_path):
    llm = _llama(str(smollm2_path), 72, 1)
    prose, junk = perplexity(llm, PROSE, 64), perplexity(llm, gibberish(0), 64)
    assert 1.0 < prose < 100.0 < 300.0 < junk and junk > 4 * prose
    assert perplexity(llm, "", 64) == float("inf")


def test_pipeline_drops_high_perplexity(smollm2_path, tmp_path):
    raw = tmp_path / "raw"
    write(raw / "prose.txt", PROSE)
    write(raw / "prose2.txt", PROSE.replace("every morning", "twice a week").replace("noise", "smell"))
    write(raw / "junk.txt", gibberish(1))
    config = DataConfig(min_chars=20, heldout_fraction=0.3, quality_filters=False, near_dedup=False,
                        paragraph_dedup_min_docs=0, perplexity_model=str(smollm2_path), max_perplexity=300.0,
                        perplexity_tokens=64)
    report = build_corpus([raw], tmp_path / "out", config, progress=False)
    assert report.dropped == {"perplexity": 1}
    assert report.samples["dropped"][0]["source"] == "junk.txt"
    assert sum(row["docs"] for row in report.perplexity_histogram) == 3
    assert len(report.perplexity_histogram) == len(PPL_EDGES) - 1 and report.perplexity_histogram[-1]["hi"] == -1
    assert "Perplexity under the reference model" in render_card(report)
    assert DataConfig().params_of("filter_perplexity") is None  # off by default
