"""Steps rewritten for speed (issue 14) give exactly what the code before them gave.

Each `reference_*` function below is the earlier implementation, kept here as the oracle; the new one
must agree with it on hypothesis strings (hanzi, kana, Latin, digits, punctuation, symbols, every kind
of space) and on every document of the bench's generated corpus, as the pipeline sees them. The corpus
as a whole is pinned byte for byte by test_bench_corpus_golden.py."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattlm.data.filters import char_ratios
from wattlm.shared.text import is_han

from .helpers import load_bench

# Characters the data stage treats specially, mixed with arbitrary ones.
SPECIAL = ("变电站運行检修。，、；：！？…「」（）()[]{}<>#|*~=_^\\@$&`•●■□◆◇★☆►▶→ｱｲＡＢ０１２"
           "abcXYZ0123456789 \t\n\r\u3000\u00a0\u2028\u200bあいカタ한글ñé%℃≥±μ.-'’\"“”")
TEXTS = st.text(alphabet=st.one_of(st.sampled_from(SPECIAL), st.characters()), max_size=300)
HYPOTHESIS = settings(max_examples=400, deadline=None)


@pytest.fixture(scope="module")
def corpus_texts(tmp_path_factory) -> list[str]:
    """The texts of 400 generated bench documents after the read phase (extracted, normalized), plus the
    raw files: what the clean-phase steps see, and rougher text besides."""
    from wattlm.data import DataConfig
    from wattlm.data.executors.local import phase_steps
    from wattlm.data.readers.source import FileSource, list_input_files

    folder = tmp_path_factory.mktemp("bench") / "corpus"
    load_bench("data_bench").write_corpus(folder, 400)
    files = list_input_files([folder])
    raw = [path.read_text("utf-8") for path in (f.path for f in files)]
    docs = FileSource(files).run()
    for step in phase_steps(DataConfig(), "read"):
        docs = step(docs)
    return [doc.text for doc in docs] + raw


# ---------------------------------------------------------------- char ratios: one Counter per text
def _visible(text: str) -> list[str]:
    return [ch for ch in text if not ch.isspace()]


def reference_ratios(text: str) -> tuple[float, float, float]:
    visible = _visible(text)
    if not visible:
        return 0.0, 0.0, 0.0
    return (sum(is_han(ch) or ch.isalpha() for ch in visible) / len(visible),
            sum(ch in char_ratios.JUNK_SYMBOLS for ch in visible) / len(visible),
            sum(ch.isdigit() for ch in visible) / len(visible))


def new_ratios(text: str) -> tuple[float, float, float]:
    return char_ratios.script_ratio(text), char_ratios.symbol_ratio(text), char_ratios.digit_ratio(text)


@HYPOTHESIS
@given(TEXTS)
def test_char_ratios_on_strings(text):
    assert new_ratios(text) == reference_ratios(text)


def test_char_ratios_on_the_bench_corpus(corpus_texts):
    for text in corpus_texts:
        assert new_ratios(text) == reference_ratios(text)


# ---------------------------------------------------------------- Gopher n-grams: ranks in numpy
def reference_tokens(text: str, lang: str):
    import re

    if lang == "zh":
        return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch)[0] not in "PZ"), 2
    return re.findall(r"\w+", text.casefold()), 1


def _reference_ngrams(toks, n):
    if isinstance(toks, str):
        return [toks[i : i + n] for i in range(len(toks) - n + 1)]
    return list(zip(*(toks[k:] for k in range(n)), strict=False))


def _reference_offsets(toks):
    from itertools import accumulate

    return range(len(toks) + 1) if isinstance(toks, str) else [0, *accumulate(map(len, toks))]


def reference_top(toks, n):
    from collections import Counter

    if len(toks) < n:
        return 0.0
    gram, count = Counter(_reference_ngrams(toks, n)).most_common(1)[0]
    if count < 2:
        return 0.0
    return count * sum(len(t) for t in gram) / _reference_offsets(toks)[-1]


def reference_duplicate(toks, n):
    from collections import Counter

    if len(toks) < n:
        return 0.0
    grams = _reference_ngrams(toks, n)
    counts = Counter(grams)
    offsets = _reference_offsets(toks)
    covered = covered_to = 0
    for start in [i for i, gram in enumerate(grams) if counts[gram] > 1]:
        low = max(start, covered_to)
        covered_to = start + n
        covered += offsets[covered_to] - offsets[low]
    return covered / offsets[-1] if offsets[-1] else 0.0


def _same_repetition(text: str) -> None:
    from wattlm.data.filters import repetition

    for lang in ("zh", "en"):
        toks, scale = repetition.tokens(text, lang)
        assert (toks, scale) == reference_tokens(text, lang)
        grams = repetition.NGrams(toks)
        for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20):
            assert grams.top_fraction(n) == reference_top(toks, n), (lang, n)
            assert grams.duplicate_fraction(n) == reference_duplicate(toks, n), (lang, n)


# Repetitive strings: short alphabets make n-grams repeat at every length, as spam does.
REPETITIVE = st.lists(st.sampled_from(["变电", "站", "检修", "the", "relay", " ", "，", "。", "A", "b b", "\n"]),
                      max_size=80).map("".join)


@HYPOTHESIS
@given(st.one_of(TEXTS, REPETITIVE))
def test_gopher_ngrams_on_strings(text):
    _same_repetition(text)


def test_gopher_ngrams_on_the_bench_corpus(corpus_texts):
    for text in corpus_texts[::3]:
        _same_repetition(text)


def _same_filter_decision(text: str) -> None:
    """The filter's own order (top n-grams, then duplicated ones seeded from the top ranks, with limits
    skipped once a shorter n's fraction is under them) gives every fraction and decision of the reference."""
    from wattlm.data.document import Document
    from wattlm.data.filters import repetition

    for lang in ("zh", "en"):
        toks, n_scale = repetition.tokens(text, lang)
        grams = repetition.NGrams(toks)
        for n in repetition.GOPHER_TOP_NGRAM:
            assert grams.top_fraction(n * n_scale) == reference_top(toks, n * n_scale), (lang, n)
        for n in repetition.GOPHER_DUP_NGRAM:
            assert grams.duplicate_fraction(n * n_scale) == reference_duplicate(toks, n * n_scale), (lang, n)
        for scale in (1.0, 0.5, 0.1):  # smaller limits: more documents are dropped, at every n
            expected = all(reference_top(toks, n * n_scale) <= limit * scale
                           for n, limit in repetition.GOPHER_TOP_NGRAM.items()) and all(
                reference_duplicate(toks, n * n_scale) <= limit * scale for n, limit in repetition.GOPHER_DUP_NGRAM.items())
            step = repetition.RepeatedNgramsFilter(scale=scale)
            assert step.keep(Document("d", text, "d.txt", {"lang": lang})) == expected, (lang, scale)


@HYPOTHESIS
@given(st.one_of(TEXTS, REPETITIVE))
def test_gopher_filter_order_on_strings(text):
    _same_filter_decision(text)


def test_gopher_filter_order_on_the_bench_corpus(corpus_texts):
    for text in corpus_texts[1::3]:
        _same_filter_decision(text)


# ---------------------------------------------------------------- language id: the script shortcut
def reference_clearly_chinese(sample: str) -> bool:
    from collections import Counter

    from wattlm.data.transforms import language

    han = letters = 0
    for ch, n in Counter(sample).items():
        kind = language._letter_class(ch)
        if kind == language._KANA_HANGUL:
            return False
        if kind != language._NOT_LETTER:
            letters += n
            han += n if kind == language._HAN else 0
    return letters > 0 and han >= language.CLEAR_HAN_SHARE * letters


@HYPOTHESIS
@given(st.one_of(TEXTS, REPETITIVE))
def test_clearly_chinese_on_strings(text):
    from wattlm.data.transforms.language import clearly_chinese

    assert clearly_chinese(text) == reference_clearly_chinese(text)


def test_language_shortcut_agrees_with_the_model_on_our_corpora(corpus_texts, tmp_path):
    """Every text the shortcut calls zh, the model calls zh: on 3,000 more bench documents after the read
    phase (the shortcut's threshold sits in the bench's mixed-script range), power-grid and the web pages,
    raw and read."""
    from wattlm.data import DataConfig
    from wattlm.data.executors.local import phase_steps
    from wattlm.data.readers.source import FileSource, list_input_files
    from wattlm.data.transforms.language import MAX_CHARS, clearly_chinese, detect_lang

    root = Path(__file__).resolve().parents[2]
    load_bench("data_bench").write_corpus(tmp_path / "bench", 3000, seed=1)
    folders = [root / "examples" / "power-grid" / "raw", root / "tests" / "data" / "webtext", tmp_path / "bench"]
    files = list_input_files([f for f in folders if f.is_dir()])
    docs = FileSource(files).run()
    for step in phase_steps(DataConfig(), "read"):
        docs = step(docs)
    texts = corpus_texts + [doc.text for doc in docs] + [doc.text for doc in FileSource(files[:200]).run()]
    shortcut = [text for text in texts if clearly_chinese(text[:MAX_CHARS])]
    assert len(texts) / 2 < len(shortcut) < len(texts)  # it takes most text here, and not all of it
    for text in shortcut:
        assert detect_lang(text, shortcut=False) == "zh"


# ---------------------------------------------------------------- MinHash: numpy shingle hashes, datasketch's permutations
def reference_shingles(text: str, lang: str, char_n: int = 5, word_n: int = 3) -> set[str]:
    from wattlm.data.dedup.minhash import _WORD

    text = text.casefold()
    if lang == "en":
        words = _WORD.findall(text)
        if len(words) < word_n:
            return {" ".join(words)} if words else set()
        return {" ".join(words[i : i + word_n]) for i in range(len(words) - word_n + 1)}
    chars = "".join(ch for ch in text if not (ch.isspace() or unicodedata.category(ch)[0] in "PSZ"))
    if len(chars) < char_n:
        return {chars} if chars else set()
    return {chars[i : i + char_n] for i in range(len(chars) - char_n + 1)}


def _python_shingle_hash(gram: str, lang: str) -> int:
    """One shingle's hash, written out in plain Python: what shingle_hashes computes for all of them in numpy."""
    from wattlm.data.dedup.minhash import _POLY, _word_hash

    units = [_word_hash(word) for word in gram.split(" ")] if lang == "en" else [ord(ch) for ch in gram]
    value = 0
    for unit in units:
        value = (value * _POLY + unit) % 2**64
    mask = 2**64 - 1
    for shift, multiplier in ((33, 0xFF51AFD7ED558CCD), (33, 0xC4CEB9FE1A85EC53)):
        value = ((value ^ (value >> shift)) * multiplier) & mask
    return (value ^ (value >> 33)) >> 32


def _same_sketch(text: str) -> None:
    import numpy as np
    from datasketch import MinHash

    from wattlm.data.dedup.minhash import NearDedup, minhash_values, shingle_hashes, shingles

    step = NearDedup()
    for lang in ("zh", "en"):
        grams = shingles(text, lang)
        assert grams == reference_shingles(text, lang)
        hashes = shingle_hashes(text, lang)
        # the numpy hashes are exactly the hashes of the shingle set (English words never hold a space)
        assert set(hashes.tolist()) == {_python_shingle_hash(gram, lang) for gram in grams}
        # and the sketch is datasketch's MinHash of those hashes
        reference = MinHash(num_perm=128, seed=1, hashfunc=int)
        reference.update_batch(hashes.tolist())
        assert np.array_equal(minhash_values(hashes, step.permutations()), reference.hashvalues)


@HYPOTHESIS
@given(st.one_of(TEXTS, REPETITIVE))
def test_minhash_values_on_strings(text):
    _same_sketch(text)


def test_minhash_values_on_the_bench_corpus(corpus_texts):
    for text in corpus_texts[::2]:
        _same_sketch(text)


def reference_near_dedup(docs, threshold=0.7):
    """The earlier NearDedup.run: datasketch MinHash objects in a MinHashLSH (fed the same shingle hashes);
    (kept ids, {dropped id: ids of the best candidates})."""
    from datasketch import MinHash, MinHashLSH

    from wattlm.data.dedup.minhash import shingle_hashes

    lsh, sketches, kept, matched = MinHashLSH(threshold=threshold, num_perm=128), {}, [], {}
    for doc in docs:
        sketch = MinHash(num_perm=128, seed=1, hashfunc=int)
        sketch.update_batch(shingle_hashes(doc.text, doc.meta["lang"]).tolist())
        scored = sorted(((sketch.jaccard(sketches[c]), c) for c in lsh.query(sketch)), key=lambda x: -x[0])
        if scored and scored[0][0] >= threshold:
            matched[doc.id] = {c for sim, c in scored if sim == scored[0][0]}  # any of a tie
            continue
        lsh.insert(doc.id, sketch)
        sketches[doc.id] = sketch
        kept.append(doc.id)
    return kept, matched


def test_near_dedup_keeps_and_clusters_as_datasketch_lsh_did(corpus_texts):
    import random

    from wattlm.data.dedup.minhash import NearDedup
    from wattlm.data.document import Document
    from wattlm.data.transforms.language import detect_lang

    rng = random.Random(3)
    texts = corpus_texts[:400]
    # near copies: one line changed, or a line dropped
    copies = []
    for text in rng.sample(texts, 80):
        lines = text.split("\n")
        lines[rng.randrange(len(lines))] = "临时插入的一行不同文字。"
        copies.append("\n".join(lines))
    all_texts = texts + copies
    rng.shuffle(all_texts)
    docs = [Document(f"d{i}", text, f"{i}.txt", {"lang": detect_lang(text)}) for i, text in enumerate(all_texts)]
    kept_ids, matched = reference_near_dedup([Document(d.id, d.text, d.source, dict(d.meta)) for d in docs])
    step = NearDedup()
    assert [doc.id for doc in step(docs)] == kept_ids
    assert step.dropped["near_duplicate"] == len(matched) > 20
    for cluster in step.clusters.values():
        for dropped in cluster.dropped:
            assert cluster.kept_id in matched[dropped["id"]]


@pytest.mark.parametrize(("seed", "num_perm"), [(1, 128), (7, 64), (0, 256)])
def test_minhash_permutations_are_datasketchs(seed, num_perm):
    import numpy as np
    from datasketch import MinHash

    from wattlm.data.dedup.minhash import NearDedup

    ours = NearDedup(seed=seed, num_perm=num_perm).permutations()
    assert np.array_equal(ours, MinHash(num_perm=num_perm, seed=seed).permutations)


def test_band_layout_is_datasketchs():
    from datasketch import MinHashLSH

    from wattlm.data.dedup.minhash import band_layout

    for num_perm in (16, 64, 128, 256):
        for threshold in (0.05, 0.2, 0.35, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 0.95):
            try:
                lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
            except ValueError:  # fewer than 2 bands: refused by both
                with pytest.raises(ValueError, match="fewer than 2 LSH bands"):
                    band_layout(threshold, num_perm)
                continue
            assert band_layout(threshold, num_perm) == (lsh.b, lsh.r), (threshold, num_perm)


# ---------------------------------------------------------------- decoding: the control-character count
@HYPOTHESIS
@given(st.text(alphabet=st.one_of(st.characters(), st.sampled_from("\x00\x01\x08\t\n\x0b\x0c\r\x0e\x1f\x7f\x80\x9f\xa0变a")),
               max_size=300))
def test_control_count_is_category_cc_on_strings(text):
    from wattlm.shared import encoding

    reference = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f\v")
    assert len(encoding._CONTROLS.findall(text)) == reference


# ---------------------------------------------------------------- normalize: fold by regex, whitespace over the whole text
def reference_fold_compat(text: str) -> str:
    from wattlm.data.transforms.normalize import _fold_table

    return unicodedata.normalize("NFC", text).translate(_fold_table())


def reference_collapse_whitespace(text: str) -> str:
    import re

    lines = (re.sub(r"[^\S\n]+", " ", line).strip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


FOLDABLE = "\u3000\uff10\uff21\uff41\uff71\ufb01\u2f00\uf900\u200b\ufeff\u00ad"
SPACES = st.lists(st.sampled_from([" ", "  ", "\t", "\n", "\n\n\n", "\u3000", "\u00a0", "\r", "\u2028", "a", "变", " b "]),
                  max_size=40).map("".join)


@HYPOTHESIS
@given(st.one_of(TEXTS, SPACES, st.text(alphabet=st.sampled_from(FOLDABLE + "a变 \n"), max_size=50)))
def test_normalize_parts_on_strings(text):
    from wattlm.data.transforms.normalize import collapse_whitespace, fold_compat

    assert fold_compat(text) == reference_fold_compat(text)
    assert collapse_whitespace(text) == reference_collapse_whitespace(text)


def test_normalize_parts_on_the_bench_corpus(corpus_texts):
    from wattlm.data.transforms.normalize import collapse_whitespace, fold_compat

    for text in corpus_texts:
        assert fold_compat(text) == reference_fold_compat(text)
        assert collapse_whitespace(text) == reference_collapse_whitespace(text)
