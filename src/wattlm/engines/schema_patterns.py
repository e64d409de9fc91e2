"""JSON-schema `pattern`s rewritten into the regex subset llama-cpp-python's converter understands.

The converter copies an escape such as `\\d` into a GBNF string literal as it is (`"\\d\\d\\d"`), which
llama.cpp either rejects as an unknown escape or reads as the letter `d`; it also glues the escape to
the literal before it, so `-\\d{4}` repeats `-\\d` four times. Before conversion each escape outside a
character class becomes a class of its own (`\\d` -> `[0-9]`, `\\.` -> `[\\x2E]`), and inside a class its
members (`[\\d_]` -> `[0-9_]`). Escapes a grammar cannot express (`\\b`, back-references, `\\p{..}`, a
negated class inside a class) are a 400 naming the pattern. A pattern without `^`/`$` is anchored (a
JSON-schema pattern is a search; an anchored match satisfies it too, and the converter needs both).
"""

from __future__ import annotations

from wattlm.errors import WattError

# Members of the shorthand classes, written for the inside of a GBNF character class.
_CLASS_MEMBERS = {"d": "0-9", "w": "a-zA-Z0-9_", "s": " \\x09\\x0A\\x0B\\x0C\\x0D"}
_CONTROL = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v", "0": "\0"}


class UnsupportedPattern(WattError):
    """A `pattern` escape no grammar can hold (HTTP 400)."""


def _char(char: str) -> str:
    """One character as a GBNF class member (hex escape: safe for `]`, `\\`, `^`, `-`, quotes)."""
    code = ord(char)
    return f"\\x{code:02X}" if code < 0x100 else f"\\u{code:04X}" if code < 0x10000 else f"\\U{code:08X}"


def _escape(pattern: str, index: int, in_class: bool, where: str) -> tuple[str, int]:
    """The GBNF class text (members only) for the escape at `pattern[index]` (a backslash), and the index after it."""
    if index + 1 >= len(pattern):
        raise UnsupportedPattern(f"{where} ends with a lone backslash")
    letter = pattern[index + 1]
    if letter.lower() in _CLASS_MEMBERS:
        members = _CLASS_MEMBERS[letter.lower()]
        if letter.isupper():
            if in_class:
                raise UnsupportedPattern(f"{where}: \\{letter} inside [...] cannot be turned into a grammar; "
                                         "list the characters instead")
            return "^" + members, index + 2
        return members, index + 2
    if letter in _CONTROL:
        return _char(_CONTROL[letter]), index + 2
    if letter in "xu":
        width = 2 if letter == "x" else 4
        digits = pattern[index + 2: index + 2 + width]
        if len(digits) == width and all(d in "0123456789abcdefABCDEF" for d in digits):
            return _char(chr(int(digits, 16))), index + 2 + width
        raise UnsupportedPattern(f"{where}: \\{letter} needs {width} hex digits")
    if letter.isalnum():  # \b, \B, \A, \Z, \p, back-references \1 ...
        raise UnsupportedPattern(f"{where}: the escape \\{letter} cannot be turned into a grammar")
    return _char(letter), index + 2  # an escaped literal: \. \- \/ \\ \( ...


def translate_pattern(pattern: str, where: str = "response_format.json_schema.schema.pattern") -> str:
    """`pattern` with every escape rewritten as a character class, anchored at both ends."""
    out: list[str] = []
    index, in_class = 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            members, index = _escape(pattern, index, in_class, where)
            out.append(members if in_class else f"[{members}]")
            continue
        if in_class:
            if char == "]" and not (out and out[-1] in ("[", "[^")):
                in_class = False
            out.append(char)
        elif char == "[":
            in_class = True
            negated = pattern.startswith("[^", index)
            out.append("[^" if negated else "[")
            index += 2 if negated else 1
            continue
        else:
            out.append(char)
        index += 1
    text = "".join(out)
    if in_class:
        raise UnsupportedPattern(f"{where} has an unclosed [")
    # Escapes are classes now, so a leading ^ and a trailing $ are anchors.
    if text.startswith("^") and text.endswith("$"):
        return text
    body = text.removeprefix("^").removesuffix("$")
    return f"^({body})$"


def translate_patterns(node, where: str = "response_format.json_schema.schema"):
    """A copy of a parsed schema with every `pattern` translated (literal values and names left alone)."""
    if isinstance(node, list):
        return [translate_patterns(item, f"{where}[{position}]") for position, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    translated = {}
    for key, value in node.items():
        if key == "pattern" and isinstance(value, str):
            translated[key] = translate_pattern(value, f"{where}.pattern")
        elif key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            translated[key] = {name: translate_patterns(child, f"{where}.{key}.{name}") for name, child in value.items()}
        elif key in ("enum", "const", "default", "examples"):
            translated[key] = value
        else:
            translated[key] = translate_patterns(value, f"{where}.{key}")
    return translated
