import pytest

from wattlm.data.base import Filter, Step
from wattlm.data.document import Document
from wattlm.errors import WattError


class Upper(Step):
    name = "upper"

    def run(self, docs):
        for doc in docs:
            doc.text = doc.text.upper()
            yield doc


class NoDigits(Filter):
    name = "no_digits"
    drop_reason = "has_digits"

    def keep(self, doc):
        return not any(ch.isdigit() for ch in doc.text)


def test_steps_chain_lazily_and_count():
    docs = [Document(str(i), text, f"{i}.txt") for i, text in enumerate(["ab", "c1", "d"])]
    upper, no_digits = Upper(), NoDigits()
    chain = no_digits(upper(iter(docs)))
    assert upper.docs_in == 0  # nothing runs until the chain is consumed
    assert [d.text for d in chain] == ["AB", "D"]
    assert (upper.docs_in, upper.docs_out, no_digits.docs_in, no_digits.docs_out) == (3, 3, 3, 2)
    assert no_digits.dropped == {"has_digits": 1}


def test_missing_optional_dependency_fails_in_one_line():
    class NeedsMissing(Upper):
        requires = ("wattlm_no_such_package",)

    with pytest.raises(WattError, match="needs the 'wattlm_no_such_package' package"):
        NeedsMissing()
