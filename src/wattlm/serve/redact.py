"""No server-side paths in what clients read.

Errors raised deep down name the file they are about (`cannot load GGUF /home/ops/.watt/artifacts/
3f2c.../model.gguf: ...`), which is right in a log and wrong in an HTTP answer: it tells an outsider
the user name, the workspace layout and the artifact ids. Every error message the server sends goes
through `without_paths`, which replaces each absolute path by its last part (`model.gguf`); the full
message stays in the server's log. API routes (`/v1/...`) are left as they are.
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger(__name__)

# An absolute POSIX path of at least two parts, not inside a word or a URL ("http://host/a/b").
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/-])/(?:[^\s/'\"`,;:()<>\[\]{}]+/)+[^\s/'\"`,;:()<>\[\]{}]*")


def _last_part(match: re.Match) -> str:
    path = match.group(0)
    if path.startswith("/v1/"):  # our own routes, named in capability errors
        return path
    parts = [part for part in path.split("/") if part]
    return parts[-1] if parts else path


def without_paths(message: str) -> str:
    """`message` with every absolute path replaced by its last part (the full one is logged)."""
    redacted = _ABSOLUTE_PATH.sub(_last_part, message)
    if redacted != message:
        log.info("error sent without server paths: %s", message)
    return redacted
