from wattlm.data.document import Document
from wattlm.data.filters.length import EmptyFilter, MinCharsFilter


def test_filters_drop_with_reasons():
    docs = [Document(str(i), text, f"{i}.txt") for i, text in enumerate(["", "   ", "短", "足够长的一段文字内容"])]
    empty, short = EmptyFilter(), MinCharsFilter(min_chars=5)
    kept = list(short(empty(docs)))
    assert [d.text for d in kept] == ["足够长的一段文字内容"]
    assert empty.dropped == {"empty": 2}
    assert short.dropped == {"too_short": 1}
    assert (empty.docs_in, empty.docs_out, short.docs_in, short.docs_out) == (4, 2, 2, 1)
