"""Runs as jobs: one row per `watt run` (from the CLI or the console) and its append-only progress events.

The rows live in the workspace's `registry.sqlite` beside the artifacts (WAL mode, so the console reads
while runs write), in two tables of their own:

- `jobs`: recipe path and content hash, status (`queued` -> `running` -> `succeeded` / `failed` /
  `cancelled`, or `interrupted` when its process vanished), pid, times, the current stage and train step,
  and the job's log file relative to `WATT_HOME` (`jobs/<id>/log.txt`).
- `job_events`: `(job, seq)` numbered from 1 per job; a reader tails with `events(job, after=seq)`.

Liveness is a lock, not a pid: the process running a job holds an `flock` on `jobs/<id>/lock` for its
whole life (the kernel drops it when the process dies, however it dies), so `sweep()` marks a `running`
job whose lock is free `interrupted`; a reused pid cannot keep a dead job alive. A `queued` job carries
the pid of the process that queued it, then of the process spawned for it (which has not yet taken the
lock), and is interrupted when that pid is gone.
Status changes out of `queued`/`running` are final: the first of "finished" and "cancelled" wins.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from wattlm.errors import NotFound, WattError
from wattlm.registry import default_home
from wattlm.registry_locks import lock_is_free, try_lock

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
ACTIVE = ("queued", "running")
RESUMABLE = ("failed", "cancelled", "interrupted")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    recipe TEXT NOT NULL,
    recipe_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    origin TEXT NOT NULL,
    status TEXT NOT NULL,
    pid INTEGER,
    own_group INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    stage TEXT,
    step INTEGER,
    steps INTEGER,
    attempt INTEGER NOT NULL DEFAULT 1,
    log TEXT NOT NULL,
    error TEXT,
    result TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created);
CREATE TABLE IF NOT EXISTS job_events (
    job TEXT NOT NULL REFERENCES jobs(id),
    seq INTEGER NOT NULL,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (job, seq)
)
"""


@dataclass
class Job:
    id: str
    recipe: str  # absolute path of the recipe file
    recipe_hash: str  # sha256 of its bytes when the job was created
    name: str  # the recipe's name
    origin: str  # "cli" or "console"
    status: str
    pid: int | None
    own_group: bool  # spawned in its own process group (cancel signals the whole group)
    created: float
    started: float | None
    finished: float | None
    stage: str | None
    step: int | None
    steps: int | None
    attempt: int
    log: str  # relative to WATT_HOME
    error: str | None
    result: dict = field(default_factory=dict)  # the run summary's report paths and artifact ids

    def to_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class Event:
    seq: int
    time: float
    kind: str
    data: dict

    def to_dict(self) -> dict:
        return {"seq": self.seq, "time": self.time, "kind": self.kind, **self.data}


def recipe_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this pid exists and is not a zombie waiting to be reaped."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie answers kill(0) but is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


class Jobs:
    """The job rows and events of one workspace; one instance per thread (it holds a SQLite connection)."""

    def __init__(self, home: Path | None = None):
        self.home = Path(home).resolve() if home else default_home()
        (self.home / "jobs").mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.home / "registry.sqlite", timeout=30, isolation_level=None,
                                  check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        if not self.db.execute("SELECT 1 FROM sqlite_master WHERE name='job_events'").fetchone():
            with self._write():
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    self.db.execute(statement)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction holding the write lock from its first statement (as the registry does)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- rows --------------------------------------------------------------------------------------

    def create(self, recipe: Path, name: str, origin: str) -> Job:
        """A new `queued` job for the recipe file, with its folder and (empty) log file."""
        recipe = Path(recipe).resolve()
        job_id = time.strftime("%Y%m%d-%H%M%S-", time.gmtime()) + uuid.uuid4().hex[:6]
        folder = self.home / "jobs" / job_id
        folder.mkdir(parents=True)
        (folder / "log.txt").touch()
        with self._write():
            self.db.execute(
                "INSERT INTO jobs (id, recipe, recipe_hash, name, origin, status, pid, created, log)"
                " VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                (job_id, str(recipe), recipe_hash(recipe), name, origin, os.getpid(), time.time(),
                 f"jobs/{job_id}/log.txt"),
            )
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        row = self.db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"no run with id {job_id!r}")
        return _job(row)

    def list(self, limit: int = 100) -> list[Job]:
        rows = self.db.execute("SELECT * FROM jobs ORDER BY created DESC LIMIT ?", (limit,))
        return [_job(r) for r in rows]

    def log_path(self, job: Job) -> Path:
        return self.home / job.log

    def lock_path(self, job_id: str) -> Path:
        return self.home / "jobs" / job_id / "lock"

    def set_pid(self, job_id: str, pid: int, own_group: bool) -> None:
        with self._write():
            self.db.execute("UPDATE jobs SET pid=?, own_group=? WHERE id=?", (pid, int(own_group), job_id))

    @contextmanager
    def running(self, job_id: str, pid: int | None = None) -> Iterator[Job]:
        """Hold the job's lock and mark it `running` for the block (the process doing the work calls this).

        Raises WattError when another process holds the lock or the job is no longer queued (cancelled
        before it started, or already finished).
        """
        handle = try_lock(self.lock_path(job_id))
        if handle is None:
            raise WattError(f"run {job_id} is already being run by another process")
        try:
            with self._write():
                changed = self.db.execute(
                    "UPDATE jobs SET status='running', pid=?, started=?, finished=NULL, error=NULL"
                    " WHERE id=? AND status='queued'", (pid or os.getpid(), time.time(), job_id)).rowcount
            if not changed:
                raise WattError(f"run {job_id} is {self.get(job_id).status}, not queued: nothing to start")
            yield self.get(job_id)
        finally:
            handle.close()  # the lock file stays: it names no garbage, and `sweep` only looks at it

    def progress(self, job_id: str, **columns) -> None:
        """Update the current stage / step / steps columns (what the runs list shows)."""
        allowed = {k: v for k, v in columns.items() if k in ("stage", "step", "steps")}
        if allowed:
            sets = ", ".join(f"{k}=?" for k in allowed)
            with self._write():
                self.db.execute(f"UPDATE jobs SET {sets} WHERE id=?", (*allowed.values(), job_id))

    def finish(self, job_id: str, status: str, error: str | None = None, result: dict | None = None) -> bool:
        """Move an active job to a final status; False when it had already ended (e.g. cancelled first)."""
        if status not in STATUSES or status in ACTIVE:
            raise WattError(f"not a final job status: {status!r} (one of {', '.join(STATUSES[2:])})")
        with self._write():
            changed = self.db.execute(
                "UPDATE jobs SET status=?, finished=?, error=?, result=? WHERE id=? AND status IN ('queued', 'running')",
                (status, time.time(), error, json.dumps(result or {}), job_id)).rowcount
            if changed:
                self._append(job_id, "end", {"status": status, **({"error": error} if error else {})})
        return bool(changed)

    def requeue(self, job_id: str) -> Job:
        """A finished-but-unsuccessful job back to `queued` for another attempt (its events continue)."""
        with self._write():
            changed = self.db.execute(
                "UPDATE jobs SET status='queued', attempt=attempt+1, pid=?, own_group=0, finished=NULL, error=NULL"
                " WHERE id=? AND status IN ('failed', 'cancelled', 'interrupted')", (os.getpid(), job_id)).rowcount
            if changed:
                self._append(job_id, "resume", {})
        if not changed:
            job = self.get(job_id)
            raise WattError(f"run {job_id} is {job.status}: only a failed, cancelled or interrupted run resumes")
        return self.get(job_id)

    def alive(self, job: Job) -> bool:
        """Whether a process is still working on the job (lock held; for a queued job, its pid alive)."""
        if not lock_is_free(self.lock_path(job.id)):
            return True
        return job.status == "queued" and pid_alive(job.pid)

    def sweep(self) -> list[str]:
        """Mark active jobs whose process is gone `interrupted`; returns their ids."""
        gone = [job for job in map(_job, self.db.execute(
            "SELECT * FROM jobs WHERE status IN ('queued', 'running')")) if not self.alive(job)]
        interrupted = [j.id for j in gone if self.finish(j.id, "interrupted", error="the run's process ended unexpectedly")]
        return interrupted

    # -- events ------------------------------------------------------------------------------------

    def append(self, job_id: str, kind: str, data: dict | None = None) -> int:
        """Append one event; returns its sequence number."""
        with self._write():
            return self._append(job_id, kind, data or {})

    def _append(self, job_id: str, kind: str, data: dict) -> int:
        row = self.db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events WHERE job=?", (job_id,)).fetchone()
        self.db.execute("INSERT INTO job_events (job, seq, time, kind, data) VALUES (?, ?, ?, ?, ?)",
                        (job_id, row[0], time.time(), kind, json.dumps(data, ensure_ascii=False, default=str)))
        return row[0]

    def events(self, job_id: str, after: int = 0, limit: int = 1000, kinds: tuple[str, ...] = ()) -> list[Event]:
        """Events with seq > `after`, oldest first (a reader passes the last seq it saw)."""
        where, args = "job=? AND seq>?", [job_id, after]
        if kinds:
            where += f" AND kind IN ({', '.join('?' * len(kinds))})"
            args += list(kinds)
        rows = self.db.execute(f"SELECT * FROM job_events WHERE {where} ORDER BY seq LIMIT ?", (*args, limit))
        return [Event(r["seq"], r["time"], r["kind"], json.loads(r["data"])) for r in rows]

    def tail_log(self, job: Job, max_bytes: int = 16_000) -> str:
        """The last `max_bytes` of the job's log, cut at a line start."""
        path = self.log_path(job)
        if not path.exists():
            return ""
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - max_bytes))
            text = handle.read().decode("utf-8", errors="replace")
        return text.split("\n", 1)[1] if size > max_bytes and "\n" in text else text


def _job(row: sqlite3.Row) -> Job:
    data = dict(row)
    data["own_group"] = bool(data["own_group"])
    data["result"] = json.loads(data["result"] or "{}")
    return Job(**data)
