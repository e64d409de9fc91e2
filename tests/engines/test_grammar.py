"""Which JSON-schema keywords a grammar cannot enforce (they make the request a 400)."""

import json

import pytest

from wattlm.engines.grammar import _unenforced_keywords, json_grammar
from wattlm.engines.params import JsonConstraint
from wattlm.errors import WattError


def test_keywords_are_found_in_nested_schemas_but_not_in_names_or_values():
    schema = {
        "type": "object",
        "properties": {
            "maximum": {"type": "string", "enum": ["minimum"]},  # a property *named* maximum: fine
            "scores": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "uniqueItems": True},
        },
        "$defs": {"not": {"type": "integer", "multipleOf": 5}},
    }
    assert _unenforced_keywords(schema) == {"exclusiveMinimum", "uniqueItems", "multipleOf"}
    assert _unenforced_keywords({"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}}}) == set()


def test_json_grammar_refuses_unenforceable_and_converts_the_rest():
    pytest.importorskip("llama_cpp")
    with pytest.raises(WattError, match="minimum"):
        json_grammar(JsonConstraint(json.dumps({"type": "integer", "minimum": 1})))
    grammar = json_grammar(JsonConstraint(json.dumps({"type": "object", "properties": {"a": {"type": "boolean"}}})))
    assert "root ::=" in grammar
    assert json_grammar(JsonConstraint()).lstrip().startswith("root   ::= object")


class OnlyEven:
    """A stand-in grammar: even token ids only; records what it was told."""

    def __init__(self) -> None:
        self.checked, self.accepted, self.masks = [], [], 0

    def allows(self, token: int) -> bool:
        self.checked.append(token)
        return token % 2 == 0

    def masked(self, logits):
        import numpy as np

        self.masks += 1
        out = np.array(logits, dtype=np.float32)
        out[1::2] = -np.inf
        return out

    def accept(self, token: int) -> None:
        self.accepted.append(token)


def test_sampler_checks_the_pick_and_masks_only_when_refused():
    import numpy as np

    from wattlm.engines.batching.sampler import TokenSampler
    from wattlm.engines.params import SamplingParams

    grammar = OnlyEven()
    sampler = TokenSampler(SamplingParams(temperature=0), [], constraint=grammar)
    assert sampler.sample(np.array([0.0, 1.0, 5.0, 2.0], dtype=np.float32)) == 2  # allowed at once
    assert grammar.masks == 0
    assert sampler.sample(np.array([0.0, 9.0, 5.0, 2.0], dtype=np.float32)) == 2  # 1 refused: best even token
    assert grammar.checked == [2, 1] and grammar.masks == 1
    sampler.accept(2)
    assert grammar.accepted == [2]
    seeded = TokenSampler(SamplingParams(temperature=1.0, seed=3), [], constraint=OnlyEven())
    picks = {seeded.sample(np.zeros(6, dtype=np.float32)) for _ in range(50)}
    assert picks <= {0, 2, 4} and len(picks) > 1
