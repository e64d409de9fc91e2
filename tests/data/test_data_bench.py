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
