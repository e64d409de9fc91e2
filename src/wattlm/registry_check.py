"""`watt registry check`: find (and with `clean=True` remove) what a crash left in a workspace.

What counts as an orphan (none of it is visible to readers, it only takes disk space or misleads):
- `pending_row`: a row whose `register()` died before marking it committed (and its folder, if moved);
- `unregistered_folder`: a folder under `artifacts/` that no row names;
- `missing_folder`: a committed row of a staged artifact whose folder is gone (deleted by hand; `find`
  already ignores it, and cleaning drops the row with its lineage edges, so children lose that link);
- `stale_staging`: a temp folder under `staging/` whose owner process is gone;
- `stale_lock`: a lock file under `locks/` or `staging/` that nobody holds.

A live process holds a lock on everything it is working on, so the check never touches its pending row,
its temp folder or its lock; each removal takes that lock first and looks again under it.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from wattlm.registry import Registry
from wattlm.registry_locks import lock_is_free, release_lock, try_lock

ORPHAN_KINDS = ("pending_row", "unregistered_folder", "missing_folder", "stale_staging", "stale_lock")


@dataclass
class Orphan:
    kind: str  # one of ORPHAN_KINDS
    path: str  # the folder or file on disk (for a row: its artifact folder)
    artifact_id: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def find_orphans(registry: Registry) -> list[Orphan]:
    """Every orphan in the workspace, in the order of ORPHAN_KINDS."""
    home, artifacts = registry.home, registry.home / "artifacts"
    # Folders first, rows second: a folder moved in after the listing is not seen, and one seen here
    # already has its (pending or committed) row, since register() inserts the row before the move.
    folders = sorted(p for p in artifacts.iterdir() if p.is_dir())
    rows = registry.db.execute("SELECT id, path, status FROM artifacts").fetchall()
    orphans = [
        Orphan("pending_row", r["path"], r["id"]) for r in rows
        if r["status"] == "pending" and lock_is_free(home / "locks" / f"register-{r['id']}.lock")
    ]
    ids = {r["id"] for r in rows}  # a staged artifact's folder is artifacts/<id>
    orphans += [Orphan("unregistered_folder", str(f)) for f in folders if f.name not in ids]
    orphans += [
        Orphan("missing_folder", r["path"], r["id"]) for r in rows
        if r["status"] == "committed" and _is_staged(r) and not (artifacts / r["id"]).exists()
    ]
    orphans += [Orphan("stale_staging", str(p)) for p in registry.stale_staging()]
    staging_locks = [p for p in (home / "staging").glob("*.lock") if not p.with_suffix("").exists()]
    orphans += [
        Orphan("stale_lock", str(p)) for p in sorted([*(home / "locks").glob("*.lock"), *staging_locks])
        if lock_is_free(p) and not _locks_a_pending_row(p, orphans)
    ]
    return orphans


def _is_staged(row) -> bool:
    """Registered from `staging()` (its folder is the workspace's), not a user's own file by path."""
    path = Path(row["path"])
    return path.name == row["id"] and path.parent.name == "artifacts"


def _locks_a_pending_row(lock: Path, orphans: list[Orphan]) -> bool:
    """A dead registration's lock file is removed with its pending row, not listed twice."""
    return any(o.kind == "pending_row" and lock.name == f"register-{o.artifact_id}.lock" for o in orphans)


def clean_orphans(registry: Registry, orphans: list[Orphan]) -> list[Orphan]:
    """Remove the given orphans; returns those actually removed (a process may have claimed one since)."""
    removed = []
    for orphan in orphans:
        if _remove(registry, orphan):
            removed.append(orphan)
    return removed


def _remove(registry: Registry, orphan: Orphan) -> bool:
    home, path = registry.home, Path(orphan.path)
    if orphan.kind == "pending_row":
        lock = home / "locks" / f"register-{orphan.artifact_id}.lock"
        handle = try_lock(lock)
        if handle is None:
            return False
        try:
            row = registry.db.execute("SELECT status FROM artifacts WHERE id=?", (orphan.artifact_id,)).fetchone()
            if row is None or row["status"] != "pending":  # committed after all, or already cleaned
                return False
            registry.delete_rows([orphan.artifact_id])
            shutil.rmtree(home / "artifacts" / orphan.artifact_id, ignore_errors=True)
            return True
        finally:
            release_lock(lock, handle)
    if orphan.kind == "unregistered_folder":
        if registry.db.execute("SELECT 1 FROM artifacts WHERE id=?", (path.name,)).fetchone():
            return False
        shutil.rmtree(path, ignore_errors=True)
        return True
    if orphan.kind == "missing_folder":
        if (home / "artifacts" / orphan.artifact_id).exists():
            return False
        registry.delete_rows([orphan.artifact_id])
        return True
    if orphan.kind == "stale_staging":
        return path.exists() and registry.remove_stale_staging(path)
    if orphan.kind == "stale_lock":
        handle = try_lock(path)
        if handle is None:
            return False
        release_lock(path, handle)
        return True
    raise ValueError(f"unknown orphan kind {orphan.kind!r}")


def check_registry(registry: Registry, *, clean: bool = False) -> dict:
    """The report `watt registry check` prints: orphans found, removed (with clean) and remaining."""
    found = find_orphans(registry)
    removed = clean_orphans(registry, found) if clean else []
    remaining = find_orphans(registry) if clean else found
    return {
        "home": str(registry.home),
        "found": [o.to_dict() for o in found],
        "removed": [o.to_dict() for o in removed],
        "remaining": [o.to_dict() for o in remaining],
        "clean": not remaining,
    }
