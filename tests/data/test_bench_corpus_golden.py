"""bench/data_bench.py's generated corpus through the data stage, byte for byte.

Recorded before the issue-14 speed work (at commit c2899a4): every step that was rewritten for
speed without changing what it does (char-ratio counts, Gopher n-grams, language id's script shortcut,
the work-file format, MinHash's permutations and band index) must give the same corpus and report.
600 documents: HTML, text and Markdown pages, planted exact and near copies, junk that the filters drop.

One change of semantics since, on purpose: near dedup hashes shingles in numpy (polynomial + fmix64)
instead of a sha1 per shingle. With it one planted near copy whose estimated Jaccard was just over the
0.7 threshold is now just under and kept (494 documents kept instead of 493 with the default steps,
495 instead of 494 with the bench's); every other document, text and split is the same, and
bench/data_dedup_bench.py's F1 went from 0.982 to 0.995. Fingerprints before that change:
default 82a639440fb2aa9480f1d985c3232498bd7bdbf2240f90cd923747117b4bf282,
bench 537e7eec1fe9eaaafe1f31f5f2c8ec182122a905e3309b55b29198851480b397."""

from __future__ import annotations

import pytest

from wattlm.data import DataConfig, build_corpus

from .helpers import load_bench
from .test_golden_output import corpus_sha256

DOCS = 600
FINGERPRINTS = {
    # the default steps
    "default": "c5b314ff0b6749d6ae4843e991e3c107c289fe4d579c12f019d44db656ecac39",
    # bench/data_bench.py's steps (no boilerplate, PII or paragraph dedup)
    "bench": "7dd175e32b491de585ee2ccab0ed0e927c1e870815bab7b5a2eb5392091aae7d",
}


@pytest.fixture(scope="module")
def bench_corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench") / "corpus"
    load_bench("data_bench").write_corpus(folder, DOCS)
    return folder


@pytest.mark.parametrize("kind", sorted(FINGERPRINTS))
def test_bench_corpus_is_unchanged(bench_corpus, tmp_path, kind):
    config = DataConfig(workers=1) if kind == "default" else DataConfig(
        workers=1, remove_boilerplate=False, scrub_pii=False, paragraph_dedup_min_docs=0)
    build_corpus([bench_corpus], tmp_path / "out", config, progress=False)
    assert corpus_sha256(tmp_path / "out") == FINGERPRINTS[kind]
