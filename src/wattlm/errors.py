"""The one exception type users see.

A `WattError` carries a one-line message that names the file, record or field at fault and what was
expected. The CLI prints it without a traceback and exits non-zero.
"""


class WattError(Exception):
    """A user-facing failure with a one-line explanation."""

    exit_code = 2


class NotFound(WattError):
    """A named thing (file, model, artifact) does not exist."""

    exit_code = 3
