"""bench/data_bench.py's generator: deterministic, varied text, planted copies (datatrove is not run here)."""

from .helpers import load_bench


def test_generator_is_deterministic_and_varied(tmp_path):
    bench = load_bench("data_bench")
    size = bench.write_corpus(tmp_path / "a", 300)
    assert size == bench.write_corpus(tmp_path / "b", 300)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert len(files_a) == 300 and {p.suffix for p in files_a} == {".html", ".txt", ".md"}
    texts = [(tmp_path / "a" / p).read_bytes() for p in files_a]
    assert texts == [(tmp_path / "b" / p).read_bytes() for p in files_a]
    distinct = len(set(texts))
    assert 300 * 0.9 < distinct < 300  # planted exact copies, and no collapse of the rest
    samples, pool = bench.load_samples()
    first = bench.generate(0, samples, pool, 0)[1]
    assert first != samples[0][1] and first.count("<") == samples[0][1].count("<")  # same layout, new text


def test_bench_runs_both_sides_alternately_and_prints_one_headline(tmp_path):
    """The whole script at a tiny size: alternating runs, medians, both breakdowns, the synthetic dedup run,
    and exactly one line with the headline word (the quiet-machine figures are taken with it unattended)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import pytest

    pytest.importorskip("datatrove")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, str(root / "bench" / "data_bench.py"), "--docs", "80", "--repeats", "2",
                           "--synthetic-docs", "3000"], capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert len([line for line in lines if "ratio" in line]) == 1
    runs = [line.split(" | ")[1] for line in lines if line.startswith(("| 1 |", "| 2 |"))]
    assert runs == ["wattlm", "datatrove", "wattlm", "datatrove"]
    assert any(line.startswith("| shard: tag_language |") for line in lines)
    assert any("Trafilatura" in line for line in lines)
    assert any(line.startswith("our dedup phase over 3,000 synthetic documents") for line in lines)
    assert not list(tmp_path.glob("watt-data-bench-*"))  # the temp folder is removed
