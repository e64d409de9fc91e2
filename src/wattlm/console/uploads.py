"""Uploaded files: size-capped, written atomically under the workspace, with names checked before they
touch the file system.

An upload's name is only ever a *base name* we accept (letters, digits, CJK, `.-_ `, a known document
extension, no leading dot): a name with a slash, `..` or a control character is refused, never
"cleaned" into something else. Each upload lands in a fresh random folder under
`WATT_HOME/uploads/` (or the page's own folder there, such as eval task files), written to a temp file there and renamed into place.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from fastapi import HTTPException, Request

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
DOCUMENT_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".jsonl", ".csv", ".json")
_SAFE_NAME = re.compile(r"^[\w\u4e00-\u9fff][\w\u4e00-\u9fff .\-]{0,120}$")


def checked_name(name: str, suffixes: tuple[str, ...] = DOCUMENT_SUFFIXES) -> str:
    """`name` if it is a plain file name with an accepted extension; otherwise a 400 naming the rule."""
    if (not name or name != name.strip() or "/" in name or "\\" in name or ".." in name
            or not _SAFE_NAME.match(name)):
        raise HTTPException(400, f"upload name {name!r} is not a plain file name (letters, digits, . - _ and spaces)")
    if not name.lower().endswith(suffixes):
        raise HTTPException(400, f"upload {name!r}: the file type must be one of {', '.join(suffixes)}")
    return name


def fresh_upload_folder(home: Path) -> Path:
    """A new folder `home/uploads/<random>` for one upload (its file keeps its own name)."""
    return Path(home) / "uploads" / secrets.token_hex(8)


async def save_upload(request: Request, folder: Path, name: str, max_bytes: int = MAX_UPLOAD_BYTES,
                      suffixes: tuple[str, ...] = DOCUMENT_SUFFIXES) -> Path:
    """The request body saved as `folder/<name>` (replacing a file of that name); 413 beyond `max_bytes`
    (checked on the declared length first, then while reading, so a lying client cannot go past it)."""
    name = checked_name(name, suffixes)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413, f"upload over the {max_bytes // (1024 * 1024)} MB limit")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    temp = folder / f".{secrets.token_hex(4)}.part"
    size = 0
    try:
        with open(temp, "wb") as handle:
            async for piece in request.stream():
                size += len(piece)
                if size > max_bytes:
                    raise HTTPException(413, f"upload over the {max_bytes // (1024 * 1024)} MB limit")
                handle.write(piece)
            handle.flush()
            os.fsync(handle.fileno())
        if size == 0:
            raise HTTPException(400, f"upload {name!r} is empty")
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target
