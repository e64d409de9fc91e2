"""JSON output (`response_format`) constrained by a llama.cpp grammar, inside our own numpy sampler.

`json_grammar` turns a request's JSON constraint into GBNF: llama-cpp-python's `JSON_GBNF` (any
object) or its JSON-schema converter, after `schema_limits.check_schema` has refused counts, pattern
repetitions, nesting and sizes that would blow the grammar up (llama.cpp's parser crashed the process
on `maxLength: 100000`); the GBNF itself is capped at `MAX_GRAMMAR_BYTES` and cached by bytes. `GrammarConstraint` wraps llama.cpp's grammar sampler
(`llama_sampler_init_grammar`) for `TokenSampler`:

- `allows(token)`: one candidate through the grammar. Most sampled tokens are allowed, so the sampler
  first picks from the unconstrained row and checks only that token (llama-server does the same);
- `masked(logits)`: the whole row through the grammar (forbidden tokens -> -inf), to pick again when
  the first pick was refused;
- `accept(token)`: advance the grammar.

llama.cpp aborts the process when a grammar accepts a token it forbids (or an end-of-generation token
before the grammar is complete), so only tokens that passed `allows`/`masked` are ever accepted, and
end-of-generation tokens never are: they end the sequence.
"""

from __future__ import annotations

import ctypes
import json
import threading
import weakref
from collections import OrderedDict

import numpy as np

from wattlm.engines.params import JsonConstraint
from wattlm.engines.schema_limits import SchemaTooLarge, check_schema
from wattlm.engines.schema_patterns import translate_patterns
from wattlm.errors import WattError

# Matches llama.cpp's `llama_token_data` {int32 id; float logit; float p;} (12 bytes, no padding).
_TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])


MAX_GRAMMAR_BYTES = 256 * 1024  # GBNF text of one grammar; llama.cpp parses it on every request
GRAMMAR_CACHE_BYTES = 8 * 1024 * 1024  # all cached grammars together


class GrammarCache:
    """Grammars by constraint, least recently used first out, bounded by their total size in bytes
    (a count bound alone would let 64 grammars of 256 KiB each sit in memory)."""

    def __init__(self, max_bytes: int = GRAMMAR_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[JsonConstraint, str] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # request threads share it; held only for dict updates, never a build

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, constraint: JsonConstraint) -> str | None:
        with self._lock:
            grammar = self._entries.get(constraint)
            if grammar is not None:
                self._entries.move_to_end(constraint)
            return grammar

    def put(self, constraint: JsonConstraint, grammar: str) -> None:
        cost = _cost(constraint, grammar)
        with self._lock:
            if constraint in self._entries or cost > self.max_bytes:
                return
            self._entries[constraint] = grammar
            self._bytes += cost
            while self._bytes > self.max_bytes:
                old, old_grammar = self._entries.popitem(last=False)
                self._bytes -= _cost(old, old_grammar)


def _cost(constraint: JsonConstraint, grammar: str) -> int:
    return len(grammar) + len(constraint.schema or "")


_CACHE = GrammarCache()


def json_grammar(constraint: JsonConstraint) -> str:
    """GBNF text for the constraint; `WattError` (HTTP 400) for a schema the converter cannot handle or
    one beyond the caps of `schema_limits` (checked before the converter runs). Cached by bytes."""
    grammar = _CACHE.get(constraint)
    if grammar is None:
        grammar = _build_grammar(constraint)
        _CACHE.put(constraint, grammar)
    return grammar


def _build_grammar(constraint: JsonConstraint) -> str:
    from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

    if constraint.schema is None:
        return JSON_GBNF
    check_schema(constraint.schema)  # counts, depth and size first: the converter expands counts into copies
    ignored = sorted(_unenforced_keywords(json.loads(constraint.schema)))
    if ignored:
        # The converter would drop them silently and the answer could break the schema (we saw
        # "age": 200 under "maximum": 150); refuse instead, as for any request we cannot honour.
        raise WattError(f"response_format.json_schema.schema uses {', '.join(ignored)}, which the grammar "
                        "cannot enforce; remove them and check those bounds on the answer")
    try:
        # Escapes such as \d would reach the GBNF as they are (llama.cpp rejects them): classes first.
        grammar = json_schema_to_gbnf(json.dumps(translate_patterns(json.loads(constraint.schema))))
    except Exception as error:  # noqa: BLE001 -- the converter raises bare AssertionError/ValueError/KeyError
        raise WattError(f"response_format.json_schema.schema cannot be turned into a grammar: {error}") from None
    if len(grammar) > MAX_GRAMMAR_BYTES:
        raise SchemaTooLarge(f"response_format.json_schema.schema gives a grammar of {len(grammar)} bytes; this "
                             f"server allows at most {MAX_GRAMMAR_BYTES} (fewer properties, enums or repetitions)")
    return grammar


# JSON-schema keywords llama-cpp-python's converter ignores (numeric bounds, uniqueness, counts of
# properties, negation and conditionals): a grammar built without them does not guarantee validity.
UNENFORCED_KEYWORDS = frozenset({
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "uniqueItems", "minProperties",
    "maxProperties", "patternProperties", "propertyNames", "not", "if", "then", "else", "dependentRequired",
    "dependentSchemas", "contains", "minContains", "maxContains",
})
_NAMED_CHILDREN = ("properties", "$defs", "definitions")  # their keys are names, not keywords


def _unenforced_keywords(node) -> set[str]:
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= _unenforced_keywords(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in _NAMED_CHILDREN and isinstance(value, dict):
                for child in value.values():
                    found |= _unenforced_keywords(child)
                continue
            if key in UNENFORCED_KEYWORDS:
                found.add(key)
            if key not in ("enum", "const", "default", "examples"):  # literal values, not schemas
                found |= _unenforced_keywords(value)
    return found


class GrammarConstraint:
    """A llama.cpp grammar sampler over one vocabulary, for one sequence."""

    def __init__(self, vocab, gbnf: str) -> None:
        import llama_cpp

        self._llama = llama_cpp
        self._vocab = vocab
        handle = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode("utf-8"), b"root")
        if not handle:
            raise WattError("llama.cpp rejected the grammar built for response_format")
        self._handle = handle
        # Freed when the constraint is garbage-collected: the scheduler thread may still be sampling
        # with it when the request thread gives up, so no one closes it explicitly.
        weakref.finalize(self, llama_cpp.llama_sampler_free, handle)
        self._one = np.zeros(1, dtype=_TOKEN_DATA)

    def _apply(self, candidates: np.ndarray) -> None:
        llama_cpp = self._llama
        array = llama_cpp.llama_token_data_array(
            data=candidates.ctypes.data_as(llama_cpp.llama_token_data_p), size=len(candidates), selected=-1,
            sorted=False,
        )
        llama_cpp.llama_sampler_apply(self._handle, ctypes.byref(array))

    def allows(self, token: int) -> bool:
        self._one["id"], self._one["logit"], self._one["p"] = token, 0.0, 0.0
        self._apply(self._one)
        return bool(np.isfinite(self._one["logit"][0]))

    def masked(self, logits: np.ndarray) -> np.ndarray:
        """logits: (n_vocab,) -> a float32 copy with the tokens the grammar forbids at -inf."""
        candidates = np.empty(logits.shape[0], dtype=_TOKEN_DATA)  # (n_vocab,)
        candidates["id"] = np.arange(logits.shape[0], dtype=np.int32)
        candidates["logit"] = logits
        candidates["p"] = 0.0
        self._apply(candidates)
        masked = np.full(logits.shape[0], -np.inf, dtype=np.float32)
        masked[candidates["id"]] = candidates["logit"]  # the grammar only lowers logits; order kept anyway
        if not np.isfinite(masked).any():
            raise WattError("the response_format grammar allows no next token")
        return masked

    def accept(self, token: int) -> None:
        if self._llama.llama_vocab_is_eog(self._vocab, token):
            return  # the sequence ends here; accepting EOG would abort an incomplete grammar
        self._llama.llama_sampler_accept(self._handle, token)


def grammar_constraint(vocab, params) -> GrammarConstraint | None:
    """The constraint a request's `SamplingParams` ask for, or None."""
    if params.response_json is None:
        return None
    return GrammarConstraint(vocab, json_grammar(params.response_json))
