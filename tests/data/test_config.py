import pytest
import yaml
from pydantic import ValidationError

from wattlm.data import DataConfig, build_corpus
from wattlm.data.config import load_data_config
from wattlm.data.flat_keys import default_step_specs
from wattlm.errors import WattError

from .test_golden_output import DEMO_DATA, corpus_sha256
from .test_pipeline import EXAMPLE_RAW

# The demo recipe's data section written as a steps list by hand: what flat_keys.py must produce.
DEMO_STEPS_YAML = """\
heldout_fraction: 0.2
seed: 0
steps:
  - {name: extract_html}
  - {name: normalize}
  - {name: remove_page_chrome}
  - {name: remove_boilerplate}
  - {name: scrub_pii}
  - {name: tag_language}
  - {name: filter_empty}
  - {name: filter_too_short, params: {min_chars: 50}}
  - {name: filter_script_ratio}
  - {name: filter_symbol_ratio}
  - {name: filter_digit_ratio}
  - {name: filter_end_punctuation}
  - {name: filter_repeated_lines}
  - {name: filter_repeated_ngrams}
  - {name: exact_dedup}
  - {name: near_dedup}
  - {name: paragraph_dedup, params: {min_doc_chars: 50}}
"""


def test_flat_keys_become_the_same_steps_as_written_by_hand():
    assert DataConfig(**DEMO_DATA) == DataConfig(**yaml.safe_load(DEMO_STEPS_YAML))
    assert DataConfig() == DataConfig(min_chars=50)  # no key at all: the default pipeline
    assert [spec.name for spec in DataConfig().steps] == [spec["name"] for spec in default_step_specs()]


@pytest.mark.skipif(not EXAMPLE_RAW.is_dir(), reason="examples/power-grid/raw not present")
def test_flat_and_steps_configs_write_identical_corpora(tmp_path):
    build_corpus([EXAMPLE_RAW], tmp_path / "flat", DataConfig(**DEMO_DATA), progress=False)
    build_corpus([EXAMPLE_RAW], tmp_path / "steps", DataConfig(**yaml.safe_load(DEMO_STEPS_YAML)), progress=False)
    assert corpus_sha256(tmp_path / "flat") == corpus_sha256(tmp_path / "steps")


def test_flat_switches_and_shared_keys():
    config = DataConfig(near_dedup=False, quality_filters=False, scrub_pii=False, paragraph_dedup_min_docs=0,
                        to_simplified=False, eval_sets=["eval.jsonl"], min_chars=80)
    names = [spec.name for spec in config.steps]
    assert names == ["extract_html", "normalize", "remove_page_chrome", "remove_boilerplate", "tag_language",
                     "filter_empty", "filter_too_short", "decontaminate", "exact_dedup"]
    # one flat key may set a param of several steps
    assert config.params_of("normalize").simplify is False and config.params_of("decontaminate").simplify is False
    assert config.params_of("filter_too_short").min_chars == 80


def test_flat_keys_and_steps_together_are_refused():
    with pytest.raises(ValidationError, match="give `steps` or the flat keys \\(min_chars\\), not both"):
        DataConfig(min_chars=3, steps=[{"name": "exact_dedup"}])


def test_steps_out_of_phase_order_and_bad_params_are_refused():
    with pytest.raises(ValidationError, match="step normalize \\(read phase\\) comes after a dedup step"):
        DataConfig(steps=[{"name": "exact_dedup"}, {"name": "normalize"}])
    with pytest.raises(ValidationError, match="remove_boilerplate counts the whole corpus first"):
        DataConfig(steps=[{"name": "scrub_pii"}, {"name": "remove_boilerplate"}])
    with pytest.raises(ValidationError, match="step filter_too_short: param min_chars: Input should be greater"):
        DataConfig(steps=[{"name": "filter_too_short", "params": {"min_chars": -1}}])
    with pytest.raises(ValidationError, match="step near_dedup: param treshold: Extra inputs are not permitted"):
        DataConfig(steps=[{"name": "near_dedup", "params": {"treshold": 0.5}}])
    with pytest.raises(ValidationError, match="unknown step 'minhash'"):
        DataConfig(steps=[{"name": "minhash"}])


def test_referenced_files_paths_and_cache_settings(tmp_path):
    (tmp_path / "eval.jsonl").write_text('{"question": "q"}\n')
    config = DataConfig(eval_sets=["eval.jsonl"], perplexity_model="smollm2-135m").with_paths_under(tmp_path)
    assert config.referenced_files() == [tmp_path / "eval.jsonl"]  # a packaged model name is no file
    before = config.cache_settings()
    assert "workers" not in before and before["steps"] == config.model_dump(mode="json")["steps"]
    (tmp_path / "eval.jsonl").write_text('{"question": "another"}\n')
    assert config.cache_settings() != before  # an edited eval set invalidates the key
    assert config.model_copy(update={"workers": 4}).cache_settings() == config.cache_settings()


def test_load_data_config_reads_a_recipe_or_its_data_section(tmp_path):
    (tmp_path / "sets").mkdir()
    (tmp_path / "recipe.yaml").write_text("name: x\ndata:\n  inputs: [raw]\n  min_chars: 20\n  eval_sets: [sets/e.jsonl]\n")
    config = load_data_config(tmp_path / "recipe.yaml")
    assert config.params_of("filter_too_short").min_chars == 20
    assert config.params_of("decontaminate").eval_sets == [tmp_path / "sets" / "e.jsonl"]  # against the file's folder
    (tmp_path / "data.yaml").write_text(DEMO_STEPS_YAML)
    assert load_data_config(tmp_path / "data.yaml") == DataConfig(**DEMO_DATA)
    (tmp_path / "bad.yaml").write_text("min_chars: many\n")
    with pytest.raises(WattError, match="bad.yaml: field steps: step filter_too_short: param min_chars"):
        load_data_config(tmp_path / "bad.yaml")
