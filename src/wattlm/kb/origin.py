"""Where a chunk came from: the path as the user gave it, the document title and its validity.

Validity (`effective`, `superseded_by`) and a title may come from YAML front matter at the top of a
Markdown/text file, from fields of a JSONL record, or from a sidecar `<file>.meta.json` (which wins).
The data stage keeps only the text, so the KB reads these from the raw files it was built from.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from wattlm.errors import WattError

META_FIELDS = ("title", "effective", "superseded_by")
_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)


def _front_matter(path: Path) -> dict[str, str]:
    if path.suffix.lower() not in (".md", ".markdown", ".txt"):
        return {}
    try:
        head = path.read_bytes()[:8192].decode("utf-8", errors="ignore")
    except OSError:
        return {}
    match = _FRONT_MATTER.match(head)
    if not match:
        return {}
    import yaml

    try:
        fields = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return {}
    return {k: str(v) for k, v in (fields or {}).items() if k in META_FIELDS and v is not None} \
        if isinstance(fields, dict) else {}


def _jsonl_fields(path: Path, line_no: int) -> dict[str, str]:
    with open(path, encoding="utf-8", errors="ignore") as handle:
        for number, line in enumerate(handle, 1):
            if number == line_no:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    return {}
                return {k: str(record[k]) for k in META_FIELDS if isinstance(record, dict) and record.get(k)}
    return {}


def _sidecar(path: Path) -> dict[str, str]:
    sidecar = path.with_name(path.name + ".meta.json")
    if not sidecar.is_file():
        return {}
    try:
        fields = json.loads(sidecar.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WattError(f"{sidecar}: not a JSON object of {', '.join(META_FIELDS)} ({exc})") from None
    if not isinstance(fields, dict):
        raise WattError(f"{sidecar}: expected a JSON object with {', '.join(META_FIELDS)}")
    return {k: str(fields[k]) for k in META_FIELDS if fields.get(k)}


def document_meta(raw_file: Path | None, record_line: int | None = None) -> dict[str, str]:
    """Title and validity of one document; `record_line` is the JSONL line of a record (source `f#N`)."""
    if raw_file is None or not raw_file.is_file():
        return {}
    meta = _jsonl_fields(raw_file, record_line) if record_line else _front_matter(raw_file)
    return {**meta, **_sidecar(raw_file)}


def sidecar_files(paths: list[Path]) -> list[Path]:
    """The sidecars beside input files: their bytes belong in the KB's cache key."""
    found = []
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        found += [f.with_name(f.name + ".meta.json") for f in files
                  if f.with_name(f.name + ".meta.json").is_file() and not f.name.endswith(".meta.json")]
    return found


def split_source(source: str) -> tuple[str, int | None]:
    """`file.jsonl#12` -> ("file.jsonl", 12); a text piece `file.txt@4096` -> ("file.txt", None)."""
    if "#" in source:
        name, _, line = source.rpartition("#")
        if line.isdigit():
            return name, int(line)
    if "@" in source:
        name, _, offset = source.rpartition("@")
        if offset.isdigit():
            return name, None
    return source, None
