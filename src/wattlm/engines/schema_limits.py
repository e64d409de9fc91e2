"""Caps on a `response_format` JSON schema, checked before any grammar is built from it.

llama-cpp-python's converter writes a count as that many copies (`maxLength: 100000` becomes 100k
nested optional groups, `pattern: "a{100000}"` 100k literal copies) and llama.cpp's grammar parser
recurses once per nested group with no depth limit: one request could take megabytes, seconds of CPU
and finally the process's stack. `check_schema` walks the schema first and refuses, naming the field
and the cap, whatever would make the grammar grow beyond what a real JSON answer needs:

- a count (`minLength`, `maxLength`, `minItems`, `maxItems`, `minProperties`, `maxProperties`) above
  `MAX_SCHEMA_COUNT`;
- a `pattern` whose repetition count (`{n}`, `{n,}`, `{n,m}`) is above `MAX_SCHEMA_COUNT`, whose
  groups nest deeper than `MAX_SCHEMA_DEPTH`, or that would expand to more than `MAX_PATTERN_EXPANSION`
  literal atoms (`(a{200}){200}` is 40,000 copies);
- nesting (objects in arrays in objects ...) deeper than `MAX_SCHEMA_DEPTH`;
- a schema of more than `MAX_SCHEMA_BYTES` of JSON.
"""

from __future__ import annotations

import json
import re

from wattlm.errors import WattError

MAX_SCHEMA_COUNT = 256  # lengths, item counts and pattern repetitions
MAX_SCHEMA_DEPTH = 16  # nested schema objects; nested groups in a pattern
MAX_SCHEMA_BYTES = 64 * 1024  # the schema as JSON text
MAX_PATTERN_EXPANSION = 4096  # literal atoms a pattern's bounded repetitions expand to
FIELD = "response_format.json_schema.schema"
_COUNT_KEYWORDS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
_LITERAL_KEYWORDS = ("enum", "const", "default", "examples")  # values, not schemas
_NAMED_CHILDREN = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")


class SchemaTooLarge(WattError):
    """A schema beyond a cap (HTTP 400; `param` names the field)."""

    def __init__(self, message: str, param: str = FIELD) -> None:
        super().__init__(message)
        self.param = param


def check_schema(schema: dict | str) -> None:
    """Raise `SchemaTooLarge` when the schema (a parsed dict, or JSON text) is beyond a cap above.

    The tree is walked before it is ever serialised: `json.dumps` of 500 nested levels would itself
    fail with a RecursionError (a 500) instead of a 400."""
    if isinstance(schema, str):
        size = len(schema.encode("utf-8"))
        if size <= MAX_SCHEMA_BYTES:
            try:
                schema = json.loads(schema)
            except RecursionError:
                raise SchemaTooLarge(f"{FIELD} nests schemas more than {MAX_SCHEMA_DEPTH} levels deep; "
                                     f"this server allows at most {MAX_SCHEMA_DEPTH}") from None
    else:
        _walk(schema, FIELD, 0)
        size = len(json.dumps(schema).encode("utf-8"))
    if size > MAX_SCHEMA_BYTES:
        raise SchemaTooLarge(f"{FIELD} is {size} bytes of JSON; this server allows at most {MAX_SCHEMA_BYTES}")
    _walk(schema, FIELD, 0)


def _walk(node, path: str, depth: int, nesting: int = 0) -> None:
    """`depth` counts schema levels (an object's property is one level down, however it is written);
    `nesting` counts every JSON container, so odd shapes (lists of lists) cannot recurse without end."""
    if depth > MAX_SCHEMA_DEPTH or nesting > 4 * MAX_SCHEMA_DEPTH:
        raise SchemaTooLarge(f"{path} nests schemas more than {MAX_SCHEMA_DEPTH} levels deep; "
                             f"this server allows at most {MAX_SCHEMA_DEPTH}")
    if isinstance(node, list):
        for index, item in enumerate(node):
            _walk(item, f"{path}[{index}]", depth, nesting + 1)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        where = f"{path}.{key}"
        if key in _COUNT_KEYWORDS and isinstance(value, (int, float)) and not isinstance(value, bool):
            if value > MAX_SCHEMA_COUNT:
                raise SchemaTooLarge(f"{where} is {value}; this server allows at most {MAX_SCHEMA_COUNT}")
        elif key == "pattern" and isinstance(value, str):
            check_pattern(value, where)
        elif key in _NAMED_CHILDREN and isinstance(value, dict):  # names -> schemas, one level down
            for name, child in value.items():
                _walk(child, f"{where}.{name}", depth + 1, nesting + 2)
        elif key not in _LITERAL_KEYWORDS:
            _walk(value, where, depth + 1, nesting + 1)


_QUANTIFIER = re.compile(r"\{(\d*)(,?)(\d*)\}")


def check_pattern(pattern: str, where: str = f"{FIELD}.pattern") -> int:
    """The number of literal atoms the pattern's bounded repetitions expand to; `SchemaTooLarge` when a
    repetition count, the group depth or that expansion is above its cap."""
    # A stack of [atoms so far in this group, atoms of the last atom (what a quantifier repeats)].
    stack: list[list[int]] = [[0, 0]]
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            _atom(stack, 1)
            index += 2
        elif char == "[":
            end = _class_end(pattern, index)
            _atom(stack, 1)
            index = end + 1
        elif char == "(":
            if len(stack) > MAX_SCHEMA_DEPTH:
                raise SchemaTooLarge(f"{where} nests groups more than {MAX_SCHEMA_DEPTH} levels deep; "
                                     f"this server allows at most {MAX_SCHEMA_DEPTH}")
            stack.append([0, 0])
            index += 1
        elif char == ")" and len(stack) > 1:
            inner = stack.pop()[0]
            _atom(stack, max(inner, 1))
            index += 1
        elif char == "{" and (match := _QUANTIFIER.match(pattern, index)) and (match.group(1) or match.group(3)):
            low = int(match.group(1) or 0)
            high = int(match.group(3)) if match.group(3) else low
            count = max(low, high)
            if count > MAX_SCHEMA_COUNT:
                raise SchemaTooLarge(f"{where} repeats {match.group(0)}; this server allows counts up to "
                                     f"{MAX_SCHEMA_COUNT}")
            group = stack[-1]
            group[0] += group[1] * (count - 1)  # the last atom now stands `count` times
            group[1] *= count
            index = match.end()
        else:  # a literal, `.`, `|`, `*`, `+`, `?` (open repetitions become loops, not copies)
            if char not in "|*+?^$":
                _atom(stack, 1)
            index += 1
        if stack[0][0] > MAX_PATTERN_EXPANSION or any(group[0] > MAX_PATTERN_EXPANSION for group in stack):
            raise SchemaTooLarge(f"{where} expands to more than {MAX_PATTERN_EXPANSION} repeated parts "
                                 "(nested repetitions multiply); simplify the pattern")
    return stack[0][0]


def _atom(stack: list[list[int]], size: int) -> None:
    stack[-1][0] += size
    stack[-1][1] = size


def _class_end(pattern: str, start: int) -> int:
    index = start + 1
    if index < len(pattern) and pattern[index] == "^":
        index += 1
    if index < len(pattern) and pattern[index] == "]":
        index += 1
    while index < len(pattern) and pattern[index] != "]":
        index += 2 if pattern[index] == "\\" else 1
    return index
