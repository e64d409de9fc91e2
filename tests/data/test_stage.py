"""The data stage's registry entry: `watt data build` and `watt run` register corpora the same way."""

import json
import subprocess
import sys

from wattlm.data.config import DataConfig
from wattlm.data.stage import build_dataset, corpus_key, text_dataset
from wattlm.registry import Registry

TEXT = ("Substation patrol: check the breaker counters, the oil level of the main transformer and the "
        "temperature of every cable joint before the shift ends. ")
CONFIG = DataConfig(min_chars=20, quality_filters=False, near_dedup=False, heldout_fraction=0.25)


def raw_folder(path, docs: int = 4):
    path.mkdir(parents=True)
    for i in range(docs):
        (path / f"doc{i}.txt").write_text(f"Document {i}. " + TEXT * (i + 2))
    return path


def test_build_dataset_is_found_again_by_content(tmp_path):
    registry = Registry(tmp_path / "ws")
    raw = raw_folder(tmp_path / "a" / "raw")
    first, reused = build_dataset(registry, [raw], CONFIG, "grid", progress=False)
    assert not reused and first.cache_key == corpus_key([raw], CONFIG)
    assert first.metrics["docs_kept"] == 4 and (first.path / "report.json").exists()
    assert first.recipe["data"]["inputs"] == [str(raw)]
    moved = tmp_path / "b" / "raw"
    moved.parent.mkdir()
    raw.rename(moved)  # the same bytes elsewhere: the same corpus
    again, reused = build_dataset(registry, [moved], CONFIG, "grid", progress=False)
    assert reused and again.id == first.id
    (moved / "doc0.txt").write_text("Changed. " + TEXT * 3)
    changed, reused = build_dataset(registry, [moved], CONFIG, "grid", progress=False)
    assert not reused and changed.id != first.id
    assert not (registry.home / "runs" / changed.cache_key).exists()  # the work folder went into the artifact


def test_text_dataset_keys_by_bytes_not_path(tmp_path):
    registry = Registry(tmp_path / "ws")
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "story.txt").write_text("The cat slept in the sun.")
    one = text_dataset(registry, tmp_path / "one", "general")
    assert text_dataset(registry, tmp_path / "two", "general").id == one.id
    (tmp_path / "two" / "story.txt").write_text("The dog slept in the shade.")
    assert text_dataset(registry, tmp_path / "two", "general").id != one.id


def test_cli_data_build_registers_through_the_stage(tmp_path):
    raw = raw_folder(tmp_path / "raw")
    base = [sys.executable, "-m", "wattlm.cli", "data", "build", str(raw), "--min-chars", "20",
            "--no-quality-filters", "--no-near-dedup", "--heldout-fraction", "0.25", "--home", str(tmp_path / "ws"),
            "--json", "--quiet"]
    first = json.loads(subprocess.run(base + ["--out", str(tmp_path / "out")], capture_output=True, text=True,
                                      check=True).stdout)
    assert first["docs_kept"] == 4 and not first["reused"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["heldout", "report.html", "report.json", "train"]
    again = json.loads(subprocess.run(base, capture_output=True, text=True, check=True).stdout)
    assert again["reused"] and again["artifact_id"] == first["artifact_id"]
    art = Registry(tmp_path / "ws").get(first["artifact_id"])
    too_short = next(s for s in art.recipe["data"]["steps"] if s["name"] == "filter_too_short")
    assert art.name == "out" and art.cache_key and too_short["params"]["min_chars"] == 20
    assert art.path.parent == tmp_path / "ws" / "artifacts"  # staged and registered, not by reference
