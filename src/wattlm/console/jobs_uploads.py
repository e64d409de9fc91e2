"""A recipe and its documents uploaded from the console, saved under `WATT_HOME/uploads/<id>/`.

An upload is built in `uploads/.incoming/<id>/` one file at a time (each streamed to a temp file and
renamed into place, counted against `MAX_UPLOAD_BYTES` for the whole upload), then `seal` renames the
folder to `uploads/<id>/` in one step: a run only ever sees a whole upload. The recipe is saved as
`recipe.yaml` and documents under `docs/`, so an uploaded recipe names them `docs` (or `docs/<file>`).
A file name from the browser never becomes a path as given: `safe_name` keeps its last component's
letters, digits, `.`, `-` and `_`, and refuses what is left empty or hidden.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from wattlm.errors import WattError

MAX_UPLOAD_BYTES = 200 * 1024 * 1024
MAX_FILES = 500
RECIPE_FILE = "recipe.yaml"
DOCS = "docs"
INCOMING_TTL_S = 24 * 3600  # an upload never sealed (tab closed half-way) is removed after this
_ID = re.compile(r"^[0-9a-f]{32}$")


class UploadTooLarge(WattError):
    pass


def safe_name(name: str) -> str:
    """A browser-sent file name as one safe path component, or WattError."""
    base = unicodedata.normalize("NFC", re.split(r"[\\/]", name or "")[-1]).strip()
    kept = "".join(ch if ch.isalnum() or ch in ".-_" else "_" for ch in base.replace(" ", "_"))[:120]
    if not kept.strip("._") or kept.startswith("."):
        raise WattError(f"file name {name!r} is not usable: give the file a name made of letters, digits, '.', '-', '_'")
    return kept


def _incoming(home: Path) -> Path:
    return home / "uploads" / ".incoming"


def upload_folder(home: Path, upload_id: str, sealed: bool) -> Path:
    if not _ID.match(upload_id or ""):
        raise WattError(f"not an upload id: {upload_id!r}")
    return (home / "uploads" / upload_id) if sealed else (_incoming(home) / upload_id)


def new_upload(home: Path) -> str:
    """Open an upload; also removes incoming uploads older than a day."""
    incoming = _incoming(home)
    incoming.mkdir(parents=True, exist_ok=True)
    for old in incoming.iterdir():
        if old.is_dir() and time.time() - old.stat().st_mtime > INCOMING_TTL_S:
            shutil.rmtree(old, ignore_errors=True)
    upload_id = uuid.uuid4().hex
    (incoming / upload_id / DOCS).mkdir(parents=True)
    return upload_id


async def save_file(home: Path, upload_id: str, role: str, name: str, chunks: AsyncIterator[bytes]) -> dict:
    """Stream one file into an open upload: role "recipe" (saved as recipe.yaml) or "doc" (under docs/)."""
    folder = upload_folder(home, upload_id, sealed=False)
    if not folder.is_dir():
        raise WattError(f"no open upload {upload_id} (it was sealed, or is over a day old)")
    if role == "recipe":
        if not safe_name(name).lower().endswith((".yaml", ".yml")):
            raise WattError(f"recipe file {name!r} must be a .yaml or .yml file")
        target = folder / RECIPE_FILE
    elif role == "doc":
        target = folder / DOCS / safe_name(name)
        if len(list((folder / DOCS).iterdir())) >= MAX_FILES:
            raise WattError(f"an upload holds at most {MAX_FILES} documents")
    else:
        raise WattError(f"upload role must be 'recipe' or 'doc', not {role!r}")
    budget = MAX_UPLOAD_BYTES - _size(folder) + (target.stat().st_size if target.exists() else 0)
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    written = 0
    try:
        with open(temp, "wb") as handle:
            async for chunk in chunks:
                written += len(chunk)
                if written > budget:
                    raise UploadTooLarge(f"upload over {MAX_UPLOAD_BYTES // (1024 * 1024)} MB (at {name!r})")
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return {"name": target.name, "role": role, "bytes": written}


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def seal(home: Path, upload_id: str) -> Path:
    """Make the upload whole and visible (one rename); returns the path of its recipe."""
    folder = upload_folder(home, upload_id, sealed=False)
    if not (folder / RECIPE_FILE).is_file():
        raise WattError(f"upload {upload_id} has no recipe file: add a recipe YAML")
    sealed = upload_folder(home, upload_id, sealed=True)
    os.replace(folder, sealed)
    return sealed / RECIPE_FILE
