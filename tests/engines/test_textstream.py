"""`stream_text` gives exactly the chunks of the three loops it replaced (llama.cpp byte pieces, the
batch engine, the transformers whole-text decode), on UTF-8 characters split across tokens, stop
strings split across tokens, end-of-generation tokens and max_tokens."""

from __future__ import annotations

import codecs
import random

import pytest

from wattlm.engines.params import GenerationChunk
from wattlm.engines.stops import StopMatcher
from wattlm.engines.textstream import ByteDecoder, WholeTextDecoder, stream_text

EOS = -1


def old_byte_loop(tokens, piece, stop, n_prompt, max_tokens, is_end):
    """The loop llamacpp.py and batching/engine.py each had (before this helper), verbatim in logic."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    stops = StopMatcher(stop)
    produced, finish = 0, "length"
    for token in tokens:
        if is_end(token):
            finish = "stop"
            break
        produced += 1
        text = stops.push(decoder.decode(piece(token)))
        if stops.matched:
            yield GenerationChunk(text, "stop", n_prompt, produced)
            return
        if text:
            yield GenerationChunk(text, None, n_prompt, produced)
        if produced >= max_tokens:
            break
    tail = stops.push(decoder.decode(b"", final=True))
    if stops.matched:
        finish = "stop"
    else:
        tail += stops.flush()
    yield GenerationChunk(tail, finish, n_prompt, produced)


def old_whole_text_loop(tokens, decode, stop, n_prompt, max_tokens, is_end):
    """The loop hf_engine.py had (before this helper)."""
    produced, generated = 0, []
    stops, sent = StopMatcher(stop), ""
    finish = "length"
    for token in tokens:
        if is_end(token):
            finish = "stop"
            break
        produced += 1
        generated.append(token)
        ready = decode(generated).rstrip("\ufffd")
        text = ""
        if len(ready) > len(sent) and ready.startswith(sent):
            text, sent = stops.push(ready[len(sent):]), ready
        if stops.matched:
            yield GenerationChunk(text, "stop", n_prompt, produced)
            return
        if text:
            yield GenerationChunk(text, None, n_prompt, produced)
        if produced >= max_tokens:
            break
    decoded = decode(generated)
    tail = stops.push(decoded[len(sent):] if decoded.startswith(sent) else "")
    if stops.matched:
        finish = "stop"
    else:
        tail += stops.flush()
    yield GenerationChunk(tail, finish, n_prompt, produced)


ALPHABET = ["a", "b", " ", "\n", "é", "電", "網", "调", "度", "🙂", "⚡", "#", "<", "/", ">"]


def case(seed: int):
    """Random text cut into byte pieces (a piece may end inside a character), some stops, an EOS."""
    rng = random.Random(seed)
    text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 40)))
    data = text.encode("utf-8")
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 25)))) if len(data) > 1 else []
    pieces = [data[start:end] for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    tokens = list(range(len(pieces)))
    if rng.random() < 0.3:
        tokens.insert(rng.randint(0, len(tokens)), EOS)
    stops = []
    for _ in range(rng.randint(0, 3)):
        start = rng.randrange(len(text))
        stops.append(text[start: start + rng.randint(1, 4)])  # often present, sometimes split across pieces
    if rng.random() < 0.3:
        stops.append("</s>")
    max_tokens = rng.choice([len(tokens) + 5, rng.randint(1, len(tokens) + 1)])
    return text, pieces, tokens, tuple(stops), max_tokens


def piece_of(pieces):
    return lambda token: pieces[token]


def whole_decode(pieces):
    # Like an HF tokenizer with byte fallback: whole sequences decode right, a cut character is U+FFFD.
    return lambda tokens: b"".join(pieces[token] for token in tokens).decode("utf-8", errors="replace")


def is_eos(token: int) -> bool:
    return token == EOS


@pytest.mark.parametrize("seed", range(300))
def test_byte_decoder_stream_equals_the_old_llama_cpp_loop(seed):
    _, pieces, tokens, stops, max_tokens = case(seed)
    new = list(stream_text(iter(tokens), ByteDecoder(piece_of(pieces)), stops, 7, max_tokens, is_eos))
    old = list(old_byte_loop(iter(tokens), piece_of(pieces), stops, 7, max_tokens, is_eos))
    assert new == old


@pytest.mark.parametrize("seed", range(300))
def test_whole_text_decoder_stream_equals_the_old_transformers_loop(seed):
    _, pieces, tokens, stops, max_tokens = case(seed)
    new = list(stream_text(iter(tokens), WholeTextDecoder(whole_decode(pieces)), stops, 3, max_tokens, is_eos))
    old = list(old_whole_text_loop(iter(tokens), whole_decode(pieces), stops, 3, max_tokens, is_eos))
    assert new == old


@pytest.mark.parametrize("decoder", ["bytes", "whole"])
@pytest.mark.parametrize("seed", range(100))
def test_the_stream_is_the_text_before_the_first_stop_and_never_half_a_character(seed, decoder):
    text, pieces, _, stops, _ = case(seed)
    # One stop: with overlapping stops the first one *completed* wins (StopMatcher cannot wait for an
    # earlier-starting one that may never complete), which the old loops did too (compared above).
    stops = stops[:1]
    tokens = list(range(len(pieces)))  # no EOS, no max_tokens cut: the whole text is generated
    made = ByteDecoder(piece_of(pieces)) if decoder == "bytes" else WholeTextDecoder(whole_decode(pieces))
    chunks = list(stream_text(tokens, made, stops, 1, len(tokens), is_eos))
    hits = [at for stop in stops if stop and (at := text.find(stop)) >= 0]
    assert "".join(chunk.text for chunk in chunks) == (text[: min(hits)] if hits else text)
    assert all("\ufffd" not in chunk.text for chunk in chunks)
    assert [chunk.finish_reason for chunk in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].finish_reason == ("stop" if hits else "length")


def test_a_character_split_over_three_tokens_comes_out_whole_once_complete():
    pieces = [b"A", *[bytes([byte]) for byte in "電".encode()], b"B"]
    chunks = list(stream_text(range(5), ByteDecoder(piece_of(pieces)), (), 1, 10, is_eos))
    assert [(chunk.text, chunk.completion_tokens) for chunk in chunks] == [("A", 1), ("電", 4), ("B", 5), ("", 5)]


def test_end_of_generation_is_not_counted_and_finishes_with_stop():
    chunks = list(stream_text([0, EOS, 1], ByteDecoder(piece_of([b"x", b"y"])), (), 2, 10, is_eos))
    assert chunks[-1] == GenerationChunk("", "stop", 2, 1)
