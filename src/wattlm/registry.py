"""The artifact registry: the spine every stage reads from and writes to.

An artifact is a dataset, model, report or export with a folder on disk, parents (lineage edges), the
resolved recipe section that produced it and a metrics dict. SQLite under `WATT_HOME` holds the rows.

Crash safety: a stage writes into `staging()`, a temp folder inside the workspace guarded by a lock
file. `register()` inserts the row as `pending`, renames the folder into `artifacts/<id>`, fsyncs it
and its parent, then marks the row `committed`; readers see committed rows only. A `kill -9` at any
point leaves at most a pending row, an unlisted folder or a stale temp folder, never a readable half
artifact; `watt registry check --clean` (`wattlm.registry_check`) removes them, and every open sweeps
temp folders whose lock nobody holds. The database runs in WAL mode so readers never wait on a writer,
and read-modify-writes (`add_metrics`) run inside `BEGIN IMMEDIATE` so two processes never lose one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from wattlm.errors import NotFound, WattError
from wattlm.registry_locks import (
    fsync_tree,
    held_lock,
    lock_is_free,
    pause_for_fault_test,
    release_lock,
    try_lock,
)

KINDS = ("dataset", "model", "report", "export", "kb")
TIERS = ("foundation", "industry", "task")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS artifacts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    tier TEXT,
    format TEXT,
    path TEXT NOT NULL,
    created REAL NOT NULL,
    cache_key TEXT,
    recipe TEXT NOT NULL DEFAULT '{}',
    metrics TEXT NOT NULL DEFAULT '{}',
    meta TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'committed'
);
CREATE INDEX IF NOT EXISTS artifacts_name ON artifacts(name);
CREATE INDEX IF NOT EXISTS artifacts_key ON artifacts(cache_key);
CREATE TABLE IF NOT EXISTS edges (
    child TEXT NOT NULL REFERENCES artifacts(id),
    parent TEXT NOT NULL REFERENCES artifacts(id),
    role TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (child, parent, role)
);
"""
# Readers see only rows whose folder is in place (see `register`); pending rows are work in progress.
_COMMITTED = "status='committed'"


def default_home() -> Path:
    return Path(os.environ.get("WATT_HOME", "watt-home")).resolve()


@dataclass
class Artifact:
    id: str
    kind: str
    name: str
    tier: str | None
    format: str | None
    path: Path
    created: float
    cache_key: str | None = None
    recipe: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    parents: list[tuple[str, str]] = field(default_factory=list)  # (parent id, role)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "tier": self.tier,
            "format": self.format,
            "path": str(self.path),
            "created": self.created,
            "parents": [{"id": pid, "role": role} for pid, role in self.parents],
            "metrics": self.metrics,
            "recipe": self.recipe,
            "meta": self.meta,
        }


class Registry:
    """SQLite-backed store of artifacts and lineage edges under one workspace folder."""

    def __init__(self, home: Path | None = None, *, sweep: bool = True):
        # Absolute, so the paths stored in rows stay right from any working directory.
        self.home = Path(home).resolve() if home else default_home()
        self.home.mkdir(parents=True, exist_ok=True)
        for sub in ("artifacts", "staging", "locks"):
            (self.home / sub).mkdir(exist_ok=True)
        # isolation_level=None: transactions are opened explicitly (`_write`), so a read-modify-write
        # can take the write lock up front with BEGIN IMMEDIATE instead of upgrading half-way.
        self.db = sqlite3.connect(self.home / "registry.sqlite", timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        # WAL: readers never block on a writer (two `watt run` on one workspace); NORMAL: a commit
        # survives a process crash, and the artifact folder itself is fsynced before its row commits.
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        if not self._has_status_column():  # a new workspace, or one from before crash safety
            with self._write():
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    self.db.execute(statement)
                if not self._has_status_column():  # old rows were all registered whole: committed
                    self.db.execute("ALTER TABLE artifacts ADD COLUMN status TEXT NOT NULL DEFAULT 'committed'")
        if sweep:
            self.sweep_staging()

    def _has_status_column(self) -> bool:
        # The schema is created (or migrated) whole in one transaction, so this column marks it current;
        # checking first keeps an ordinary open from taking the write lock.
        return any(row["name"] == "status" for row in self.db.execute("PRAGMA table_info(artifacts)"))

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction that holds the database's write lock from its first statement."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self.db.in_transaction:  # some errors (a full disk) have rolled it back already
                self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def stale_staging(self) -> list[Path]:
        """Temp folders whose lock nobody holds (their process ended without cleaning up)."""
        folders = sorted(p for p in (self.home / "staging").iterdir() if p.is_dir())
        return [tmp for tmp in folders if lock_is_free(tmp.with_name(tmp.name + ".lock"))]

    def sweep_staging(self) -> list[Path]:
        """Remove temp folders left by crashed runs; a live process holds its folder's lock."""
        folders = sorted(p for p in (self.home / "staging").iterdir() if p.is_dir())
        return [tmp for tmp in folders if self.remove_stale_staging(tmp)]

    def remove_stale_staging(self, tmp: Path) -> bool:
        """Remove one temp folder if its lock is free (taken while removing, so no one claims it then)."""
        lock = tmp.with_name(tmp.name + ".lock")
        handle = try_lock(lock)
        if handle is None:
            return False
        shutil.rmtree(tmp, ignore_errors=True)
        release_lock(lock, handle)
        return True

    def close(self) -> None:
        self.db.close()

    # -- writing -------------------------------------------------------------------------------

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A private temp folder for a stage to fill; removed afterwards unless registered.

        A lock file beside it is held for the folder's whole life: the sweep of another process
        removes only folders whose lock it can take, so a live run's folder is never swept.
        """
        tmp = self.home / "staging" / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        lock = tmp.with_name(tmp.name + ".lock")
        handle = try_lock(lock, blocking=True)
        try:
            tmp.mkdir(parents=True)  # after the lock: a sweep never sees this folder unlocked
            yield tmp
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
            release_lock(lock, handle)

    def register(
        self,
        kind: str,
        name: str,
        *,
        staged: Path | None = None,
        path: Path | None = None,
        tier: str | None = None,
        format: str | None = None,
        parents: list[tuple[str, str]] | None = None,
        recipe: dict | None = None,
        metrics: dict | None = None,
        meta: dict | None = None,
        cache_key: str | None = None,
    ) -> Artifact:
        """Register an artifact.

        `staged` is a folder from `staging()` that is moved into the workspace; `path` points at
        something that stays where it is (a user's own GGUF file or HF folder).

        A staged artifact goes pending row -> rename into `artifacts/<id>` -> fsync -> committed,
        under a lock (`locks/register-<id>.lock`) that tells `watt registry check` the pending row
        belongs to a live process. A crash at any step leaves nothing a reader sees.
        """
        if kind not in KINDS:
            raise WattError(f"artifact kind must be one of {KINDS}, got {kind!r}")
        if tier is not None and tier not in TIERS:
            raise WattError(f"tier must be one of {TIERS}, got {tier!r}")
        if (staged is None) == (path is None):
            raise ValueError("register() takes exactly one of staged= or path=")
        artifact_id = f"{kind[:2]}-{uuid.uuid4().hex[:10]}"
        parents = parents or []
        for pid, _ in parents:
            self.get(pid)  # raises NotFound for a dangling edge
        final = self.home / "artifacts" / artifact_id if staged is not None else Path(path).resolve()
        row = (
            artifact_id, kind, name, tier, format, str(final), time.time(), cache_key,
            json.dumps(recipe or {}, ensure_ascii=False), json.dumps(metrics or {}, ensure_ascii=False),
            json.dumps(meta or {}, ensure_ascii=False),
        )
        if staged is None:  # nothing moves on disk: the row is complete in one transaction
            self._insert(row, parents, "committed")
            return self.get(artifact_id)
        with held_lock(self.home / "locks" / f"register-{artifact_id}.lock"):
            self._insert(row, parents, "pending")
            try:
                pause_for_fault_test("pending")
                os.replace(staged, final)  # same filesystem: atomic
                pause_for_fault_test("renamed")
                fsync_tree(final)  # the files are on disk before a row says they exist
                pause_for_fault_test("fsynced")
                with self._write():
                    self.db.execute("UPDATE artifacts SET status='committed' WHERE id=?", (artifact_id,))
                    pause_for_fault_test("marking")  # killed here: the transaction rolls back, still pending
            except BaseException:  # an error we see (not a kill): put things back as they were
                if final.exists() and not staged.exists():
                    os.replace(final, staged)
                self.delete_rows([artifact_id])
                raise
        return self.get(artifact_id)

    def delete_rows(self, artifact_ids: list[str]) -> None:
        """Drop rows and every lineage edge that names them (for uncommitted or vanished artifacts)."""
        with self._write():
            for artifact_id in artifact_ids:
                self.db.execute("DELETE FROM edges WHERE child=? OR parent=?", (artifact_id, artifact_id))
                self.db.execute("DELETE FROM artifacts WHERE id=?", (artifact_id,))

    def _insert(self, row: tuple, parents: list[tuple[str, str]], status: str) -> None:
        with self._write():
            self.db.execute(
                "INSERT INTO artifacts (id, kind, name, tier, format, path, created, cache_key, recipe,"
                " metrics, meta, status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (*row, status),
            )
            self.db.executemany(
                "INSERT OR IGNORE INTO edges (child, parent, role) VALUES (?,?,?)",
                [(row[0], pid, role) for pid, role in parents],
            )

    def add_metrics(self, artifact_id: str, metrics: dict) -> Artifact:
        """Merge `metrics` into an artifact's metrics (evaluation adds scores to existing models).

        Read and write happen under one write lock, so two processes adding different scores at
        once both keep theirs.
        """
        with self._write():
            art = self.get(artifact_id)
            merged = {**art.metrics, **metrics}
            self.db.execute(
                "UPDATE artifacts SET metrics=? WHERE id=?", (json.dumps(merged, ensure_ascii=False), art.id)
            )
        return self.get(art.id)

    # -- reading -------------------------------------------------------------------------------

    def _from_row(self, row: sqlite3.Row) -> Artifact:
        parents = [
            (r["parent"], r["role"])
            for r in self.db.execute("SELECT parent, role FROM edges WHERE child=? ORDER BY role", (row["id"],))
        ]
        return Artifact(
            id=row["id"], kind=row["kind"], name=row["name"], tier=row["tier"], format=row["format"],
            path=Path(row["path"]), created=row["created"], cache_key=row["cache_key"],
            recipe=json.loads(row["recipe"]), metrics=json.loads(row["metrics"]),
            meta=json.loads(row["meta"]), parents=parents,
        )

    def get(self, ref: str, kind: str | None = None) -> Artifact:
        """Look an artifact up by id, or by name (the newest one of that name)."""
        row = self.db.execute(f"SELECT * FROM artifacts WHERE id=? AND {_COMMITTED}", (ref,)).fetchone()
        if row is None:
            query = f"SELECT * FROM artifacts WHERE name=? AND {_COMMITTED}"
            args: list = [ref]
            if kind:
                query += " AND kind=?"
                args.append(kind)
            row = self.db.execute(query + " ORDER BY created DESC LIMIT 1", args).fetchone()
        if row is None and re.fullmatch(r"[a-z]{2}-[0-9a-f]{4,}", ref):  # a short id, as `watt models list` prints
            rows = self.db.execute(
                f"SELECT * FROM artifacts WHERE id LIKE ? AND {_COMMITTED} LIMIT 2", (ref + "%",)
            ).fetchall()
            row = rows[0] if len(rows) == 1 else None
        if row is None or (kind and row["kind"] != kind):
            what = kind or "artifact"
            raise NotFound(f"unknown {what}: {ref!r} (see `watt models list`)")
        return self._from_row(row)

    @contextmanager
    def key_lock(self, cache_key: str) -> Iterator[None]:
        """An exclusive inter-process lock on one cache key, held while a stage checks and produces it.

        Two `watt run` on one workspace that reach the same stage queue here: the second finds the
        first's artifact instead of computing (and registering) it again.
        """
        with held_lock(self.home / "locks" / f"{cache_key}.lock"):
            yield

    def find_or_produce(self, cache_key: str, produce: Callable[[Path], dict]) -> tuple[Artifact, bool]:
        """The one cache path of every stage: find the key's artifact, or produce and register it.

        `produce(staged)` fills the staging folder and returns the keyword arguments of `register`
        (kind, name, tier, format, parents, recipe, metrics, meta). Returns (artifact, reused).
        """
        with self.key_lock(cache_key):
            found = self.find(cache_key)
            if found is not None:
                return found, True
            with self.staging() as staged:
                fields = produce(staged)
                kind, name = fields.pop("kind"), fields.pop("name")
                return self.register(kind, name, staged=staged, cache_key=cache_key, **fields), False

    def find(self, cache_key: str) -> Artifact | None:
        """The newest artifact produced from exactly these inputs and settings, if any."""
        row = self.db.execute(
            f"SELECT * FROM artifacts WHERE cache_key=? AND {_COMMITTED} ORDER BY created DESC LIMIT 1",
            (cache_key,),
        ).fetchone()
        if row is None:
            return None
        art = self._from_row(row)
        return art if art.path.exists() else None

    def list(self, kind: str | None = None) -> list[Artifact]:
        if kind:
            rows = self.db.execute(f"SELECT * FROM artifacts WHERE kind=? AND {_COMMITTED} ORDER BY created", (kind,))
        else:
            rows = self.db.execute(f"SELECT * FROM artifacts WHERE {_COMMITTED} ORDER BY created")
        return [self._from_row(r) for r in rows.fetchall()]

    def children(self, artifact_id: str) -> list[Artifact]:
        rows = self.db.execute(
            "SELECT a.* FROM artifacts a JOIN edges e ON e.child=a.id WHERE e.parent=? AND a.status='committed'"
            " ORDER BY a.created",
            (artifact_id,),
        ).fetchall()
        return [self._from_row(r) for r in rows]

    def ancestors(self, artifact_id: str) -> list[Artifact]:
        """The artifact and everything it was made from, oldest first (a DAG walked breadth-first)."""
        seen: dict[str, Artifact] = {}
        frontier = [artifact_id]
        while frontier:
            art = self.get(frontier.pop(0))
            if art.id in seen:
                continue
            seen[art.id] = art
            frontier.extend(pid for pid, _ in art.parents)
        return sorted(seen.values(), key=lambda a: a.created)
