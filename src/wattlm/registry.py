"""The artifact registry: the spine every stage reads from and writes to.

An artifact is a dataset, model, report or export with a folder on disk, parents (lineage edges), the
resolved recipe section that produced it and a metrics dict. SQLite under `WATT_HOME` holds the rows.

Atomicity: a stage writes into `staging()`, a temp folder inside the workspace; `register()` renames it
into `artifacts/<id>` and inserts the row in one transaction. A crash before that leaves only a temp
folder (swept on the next open), never a registered half artifact.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from wattlm.errors import NotFound, WattError

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
    meta TEXT NOT NULL DEFAULT '{}'
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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

    def __init__(self, home: Path | None = None):
        self.home = Path(home) if home else default_home()
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "artifacts").mkdir(exist_ok=True)
        (self.home / "staging").mkdir(exist_ok=True)
        self.db = sqlite3.connect(self.home / "registry.sqlite", timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(_SCHEMA)
        self.db.commit()
        self._sweep_staging()

    def _sweep_staging(self) -> None:
        """Remove temp folders left by crashed runs (their pid no longer exists)."""
        for tmp in (self.home / "staging").iterdir():
            pid = tmp.name.split("-", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(tmp, ignore_errors=True)

    def close(self) -> None:
        self.db.close()

    # -- writing -------------------------------------------------------------------------------

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A private temp folder for a stage to fill; removed afterwards unless registered."""
        tmp = self.home / "staging" / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            yield tmp
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

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
        if staged is not None:
            final = self.home / "artifacts" / artifact_id
            os.replace(staged, final)  # same filesystem: atomic
            staged.mkdir()  # the staging context expects to remove something
        else:
            final = Path(path).resolve()
        created = time.time()
        with self.db:
            self.db.execute(
                "INSERT INTO artifacts (id, kind, name, tier, format, path, created, cache_key, recipe,"
                " metrics, meta) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    artifact_id, kind, name, tier, format, str(final), created, cache_key,
                    json.dumps(recipe or {}, ensure_ascii=False),
                    json.dumps(metrics or {}, ensure_ascii=False),
                    json.dumps(meta or {}, ensure_ascii=False),
                ),
            )
            self.db.executemany(
                "INSERT OR IGNORE INTO edges (child, parent, role) VALUES (?,?,?)",
                [(artifact_id, pid, role) for pid, role in parents],
            )
        return self.get(artifact_id)

    def add_metrics(self, artifact_id: str, metrics: dict) -> Artifact:
        """Merge `metrics` into an artifact's metrics (evaluation adds scores to existing models)."""
        art = self.get(artifact_id)
        merged = {**art.metrics, **metrics}
        with self.db:
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
        row = self.db.execute("SELECT * FROM artifacts WHERE id=?", (ref,)).fetchone()
        if row is None:
            query = "SELECT * FROM artifacts WHERE name=?"
            args: list = [ref]
            if kind:
                query += " AND kind=?"
                args.append(kind)
            row = self.db.execute(query + " ORDER BY created DESC LIMIT 1", args).fetchone()
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
        import fcntl

        locks = self.home / "locks"
        locks.mkdir(exist_ok=True)
        with open(locks / f"{cache_key}.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

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
            "SELECT * FROM artifacts WHERE cache_key=? ORDER BY created DESC LIMIT 1", (cache_key,)
        ).fetchone()
        if row is None:
            return None
        art = self._from_row(row)
        return art if art.path.exists() else None

    def list(self, kind: str | None = None) -> list[Artifact]:
        if kind:
            rows = self.db.execute("SELECT * FROM artifacts WHERE kind=? ORDER BY created", (kind,))
        else:
            rows = self.db.execute("SELECT * FROM artifacts ORDER BY created")
        return [self._from_row(r) for r in rows.fetchall()]

    def children(self, artifact_id: str) -> list[Artifact]:
        rows = self.db.execute(
            "SELECT a.* FROM artifacts a JOIN edges e ON e.child=a.id WHERE e.parent=? ORDER BY a.created",
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
