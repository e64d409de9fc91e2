"""The one way a typed config's validation error reaches a user: one line naming where the settings came
from (a recipe file, a config file, a verb's options), the field, what is wrong and the value given.

pydantic's own message already lists the allowed values where there is a fixed set ("Input should be
'cpt', 'sft' or 'distill'") and the bound where there is a range ("greater than or equal to 1").
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

# Error types whose input is not worth echoing: nothing was given, or the whole section was.
_NO_ECHO = ("missing", "extra_forbidden")


def describe_validation_error(error: ValidationError, source: str | Path) -> str:
    """`<source>: field <a.b>: <what is wrong> (got <value>) [+N more]` for the first problem."""
    problems = error.errors()
    first = problems[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    elif first["type"] == "missing":
        message = "required field is missing"
    given = first.get("input")
    echo = first["type"] not in _NO_ECHO and not isinstance(given, dict)
    suffix = f" (got {given!r})" if echo else ""
    more = f" [+{len(problems) - 1} more]" if len(problems) > 1 else ""
    return f"{source}: field {where}: {message}{suffix}{more}"
