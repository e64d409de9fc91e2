"""char_tables: a text's character classes by table look-up are the classifier's, inside and beyond the BMP."""

from hypothesis import given, settings
from hypothesis import strategies as st

from wattlm.data.char_tables import class_counts, classes, code_points


def _kind(ch: str) -> int:
    return 2 if ch.isdigit() else 1 if ch.isalpha() else 0


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.one_of(st.characters(), st.sampled_from("变电站１２aZ 。\U00020000\U0001F600\ud800")),
               max_size=200))
def test_classes_are_the_functions_on_every_character(text):
    assert classes(code_points(text), _kind).tolist() == [_kind(ch) for ch in text]
    assert class_counts(text, _kind, 3) == [sum(_kind(ch) == k for ch in text) for k in range(3)]


def test_beyond_the_bmp_and_lone_surrogates():
    text = "a\U00020000b\U0001F600\ud800１"  # a CJK extension B hanzi, an emoji, a lone surrogate, a full-width digit
    assert code_points(text).tolist() == [ord(ch) for ch in text]
    assert classes(code_points(text), _kind).tolist() == [1, 1, 1, 0, 0, 2]
    assert class_counts("", _kind, 3) == [0, 0, 0]
