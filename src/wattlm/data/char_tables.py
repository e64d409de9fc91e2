"""Per-character classes of a whole text in numpy: one table look-up per character instead of a Python call.

Several steps ask the same kind of question of every character (is it a hanzi, a letter, punctuation, a
digit?). Asked in Python, per character or per distinct character through a `Counter`, these were a
large share of the clean phase. Here a step's classifier is evaluated once per process for every
code point of the Basic Multilingual Plane (65,536 calls, a few tens of milliseconds) into a uint8
table, and a text's classes are `table[code points]`. Characters beyond the BMP (emoji, rare hanzi of
extension B+) are rare: they are classified by the same function, one call each. So the classes are
those of the function, for every character, by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

BMP = 0x10000
_TABLES: dict[Callable[[str], int], Any] = {}


def code_points(text: str) -> Any:
    """The text's code points as a uint32 array (lone surrogates included, as their own values)."""
    import numpy as np

    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def table(classify: Callable[[str], int]) -> Any:
    """`classify(chr(c))` for every BMP code point c (uint8), built once per process and function."""
    import numpy as np

    built = _TABLES.get(classify)
    if built is None:
        built = _TABLES[classify] = np.fromiter((classify(chr(code)) for code in range(BMP)), dtype=np.uint8,
                                                count=BMP)
    return built


def classes(codes: Any, classify: Callable[[str], int]) -> Any:
    """`classify` of each code point in `codes` (a uint8 array of the same length)."""
    import numpy as np

    lookup = table(classify)
    if len(codes) == 0 or int(codes.max()) < BMP:
        return lookup[codes]
    beyond = codes >= BMP
    result = lookup[np.where(beyond, 0, codes)]
    result[beyond] = [classify(chr(code)) for code in codes[beyond].tolist()]
    return result


def class_counts(text: str, classify: Callable[[str], int], size: int) -> list[int]:
    """How many characters of `text` fall in each class 0..size-1 (classify returns < size)."""
    import numpy as np

    return np.bincount(classes(code_points(text), classify), minlength=size).tolist()
