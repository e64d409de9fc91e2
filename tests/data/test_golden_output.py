"""The corpus, byte for byte: fingerprints recorded with the pipeline as it was before the Step/steps
refactor (commit 53fdb0c). A change here means the data stage writes something else than it did;
that needs a reason (a library upgrade of trafilatura, OpenCC or py3langid can be one).

Changed once since (issue 14, web text): front matter became record fields (a `title` column, plus
`date`/`author` where a document has them) and report.json gained the `remove_page_chrome` step and
`page_chrome_lines` (on the power-grid corpus the forum's six "查看: N | 回复: N" counters are now counted
there instead of in `boilerplate_top`). Every document's id, text and split are the same as before.

Changed again (issue 14, data-stage speed): near dedup hashes shingles in numpy (a polynomial hash and
fmix64) instead of a sha1 per shingle, so the estimated similarities in `near_dup_clusters` moved
(0.938 -> 0.961 and so on); on the power-grid corpus the same documents are kept with the same texts and
splits. On bench/data_dedup_bench.py F1 went from 0.982 to 0.995."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from wattlm.data import DataConfig, build_corpus

from .test_pipeline import CONFIG, EXAMPLE_RAW, make_raw

GENERATED_CORPUS_SHA256 = "ff1057e29b90b39ccd5bade4fa561b1022dea3362070f55186679a38e31519a1"
POWER_GRID_SHA256 = "e0592b787754e39bbc8d26197c56851c9a8928a7142e29b7f4b258f9d49862af"
# examples/power-grid/recipe.yaml's data section (without inputs), in the flat keys it is written in.
DEMO_DATA = {"heldout_fraction": 0.2, "seed": 0, "min_chars": 50}


def corpus_sha256(out: Path) -> str:
    """report.json and every shard, with their relative names."""
    digest = hashlib.sha256()
    for path in [out / "report.json", *sorted((out / "train").iterdir()), *sorted((out / "heldout").iterdir())]:
        digest.update(path.relative_to(out).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def test_generated_corpus_is_unchanged(tmp_path):
    build_corpus([make_raw(tmp_path / "raw")], tmp_path / "out", CONFIG, progress=False)
    assert corpus_sha256(tmp_path / "out") == GENERATED_CORPUS_SHA256


@pytest.mark.skipif(not EXAMPLE_RAW.is_dir(), reason="examples/power-grid/raw not present")
def test_power_grid_corpus_of_the_demo_recipe_is_unchanged(tmp_path):
    build_corpus([EXAMPLE_RAW], tmp_path / "out", DataConfig(**DEMO_DATA), progress=False)
    assert corpus_sha256(tmp_path / "out") == POWER_GRID_SHA256
