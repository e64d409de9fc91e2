"""StopMatcher: streamed pieces join to the text before the first stop, however the text is split."""

from __future__ import annotations

import random

import pytest

from wattlm.engines.stops import StopMatcher


def run(pieces: list[str], stops: list[str]) -> tuple[list[str], bool]:
    matcher = StopMatcher(stops)
    sent = [matcher.push(piece) for piece in pieces]
    sent.append(matcher.flush())
    return sent, matcher.matched


def test_a_stop_split_across_pieces_is_never_sent():
    sent, matched = run(["Answer: 4\n\nUs", "er:", " more"], ["\n\nUser:"])
    assert matched and "".join(sent) == "Answer: 4"
    assert sent[0] == "Answer: 4"  # "\n\nUs" was held back, not sent and then regretted


def test_held_back_text_is_released_when_it_turns_out_not_to_be_a_stop():
    sent, matched = run(["a\n", "\nb"], ["\n\nUser:"])
    assert not matched
    assert sent == ["a", "\n\nb", ""]


def test_the_earliest_stop_wins_and_empty_stops_are_ignored():
    sent, matched = run(["x END y STOP"], ["STOP", "END", ""])
    assert matched and "".join(sent) == "x "


def test_without_stops_everything_passes_straight_through():
    sent, matched = run(["a", "b"], [])
    assert sent == ["a", "b", ""] and not matched


@pytest.mark.parametrize("seed", range(20))
def test_any_split_gives_the_text_before_the_first_stop(seed):
    rng = random.Random(seed)
    stops = ["</s>", "###", "ab"]
    text = "".join(rng.choice(["a", "b", "#", "<", "/", "s", ">", " ", "x"]) for _ in range(60))
    cuts = sorted(rng.sample(range(1, len(text)), 15))
    pieces = [text[start:end] for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    hits = [at for stop in stops if (at := text.find(stop)) >= 0]
    expected = text[: min(hits)] if hits else text
    sent, matched = run(pieces, stops)
    assert "".join(sent) == expected
    assert matched == bool(hits)
