"""API keys: created and revoked with `watt keys`, checked by the server on every /v1 request.

A key is `watt-` plus 32 random bytes (urlsafe base64), shown once at creation. The registry's SQLite
database keeps only its SHA-256 (a fast hash is enough: the key has 256 bits of entropy, so there is
nothing to brute-force, unlike a password), a short prefix to recognise it by, a name, when it was
created and revoked, and its rate limit. Nothing stored lets anyone rebuild a key.

The table lives in the registry's database (`<home>/registry.sqlite`) but is created and read only
here; the registry itself does not know about it.

Auth fails closed: creating a key stores the mode `on` in `key_settings`, and revoking keys never
changes it. With every key revoked the server answers 401 to everyone until an operator runs
`watt keys auth off` (or creates a new key).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from wattlm.errors import NotFound, WattError

KEY_PREFIX = "watt-"
SHOWN_PREFIX_CHARS = 12  # "watt-" + 7 random characters: enough to tell keys apart in a list

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    hash TEXT PRIMARY KEY,
    prefix TEXT NOT NULL,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    revoked REAL,
    rate_limit REAL
);
CREATE INDEX IF NOT EXISTS keys_name ON keys(name);
CREATE TABLE IF NOT EXISTS key_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
AUTH_ON, AUTH_OFF = "on", "off"


@dataclass(frozen=True)
class KeyRecord:
    """A stored key, without the key itself."""

    name: str
    prefix: str
    created: float
    revoked: float | None
    rate_limit: float | None  # requests per minute; None: unlimited
    hash: str

    @property
    def active(self) -> bool:
        return self.revoked is None

    def to_dict(self) -> dict:
        row = asdict(self)
        del row["hash"]  # a listing has no use for it
        row["active"] = self.active
        return row


_KEY_SHAPE = re.compile(r"^watt-[A-Za-z0-9_-]{43}$")  # KEY_PREFIX + token_urlsafe(32)


def well_formed(key: str) -> bool:
    """Whether `key` has the shape of a key we issue (checked before any cache or database lookup)."""
    return bool(_KEY_SHAPE.match(key))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?\s*$")
_PER_MINUTE = {None: 1.0, "m": 1.0, "min": 1.0, "minute": 1.0, "s": 60.0, "sec": 60.0, "second": 60.0,
               "h": 1 / 60, "hour": 1 / 60}


def parse_rate_limit(text: str) -> float:
    """'120/min', '2/s', '1000/h' or a bare number (per minute) -> requests per minute."""
    match = _RATE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise WattError(f"rate limit '{text}' is not understood; write N/min, N/s or N/h with N > 0 (e.g. 60/min)")
    return float(match.group(1)) * _PER_MINUTE[match.group(2)]


class KeyStore:
    """The `keys` table of one registry database. Each call opens its own connection (thread-safe)."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        if not self.db_path.parent.is_dir():
            raise NotFound(f"registry folder not found: {self.db_path.parent}")
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @classmethod
    def of_home(cls, home: Path) -> KeyStore:
        """The store inside the workspace `home` (the registry keeps its rows in `registry.sqlite`)."""
        return cls(Path(home) / "registry.sqlite")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for one transaction: committed on success, rolled back on error, then closed."""
        db = sqlite3.connect(self.db_path, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    def create(self, name: str, rate_limit: float | None = None) -> tuple[str, KeyRecord]:
        """A new key named `name`: (the key, to show once, and its record)."""
        name = name.strip()
        if not name:
            raise WattError("a key needs a non-empty name")
        if rate_limit is not None and rate_limit <= 0:
            raise WattError(f"rate limit must be positive, got {rate_limit}")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = KeyRecord(name=name, prefix=key[:SHOWN_PREFIX_CHARS], created=time.time(), revoked=None,
                           rate_limit=rate_limit, hash=hash_key(key))
        with self._connect() as db:  # one transaction: the name check and the insert
            clash = db.execute("SELECT 1 FROM keys WHERE name = ? AND revoked IS NULL", (name,)).fetchone()
            if clash:
                raise WattError(f"an active key named '{name}' exists; revoke it first or choose another name")
            db.execute(
                "INSERT INTO keys (hash, prefix, name, created, revoked, rate_limit) VALUES (?, ?, ?, ?, NULL, ?)",
                (record.hash, record.prefix, record.name, record.created, record.rate_limit),
            )
            _set_mode(db, AUTH_ON)  # from now on the server is closed, whatever happens to the keys
        return key, record

    def auth_mode(self) -> str:
        """`on` once any key was created (until `set_auth_mode("off")`), else `off`.

        A database from before the mode was stored counts as `on` if it holds any key, active or revoked:
        revoking a leaked last key must not open the server."""
        with self._connect() as db:
            row = db.execute("SELECT value FROM key_settings WHERE name = 'auth'").fetchone()
            if row is not None:
                return row["value"]
            return AUTH_ON if db.execute("SELECT 1 FROM keys LIMIT 1").fetchone() else AUTH_OFF

    def auth_required(self) -> bool:
        """Whether the server asks every request for a key (fail closed: revoking keys never opens it)."""
        return self.auth_mode() == AUTH_ON

    def set_auth_mode(self, mode: str) -> None:
        """The operator's explicit switch (`watt keys auth on|off`). `off` only when no key is active:
        turning auth off while keys are handed out would silently ignore them."""
        if mode not in (AUTH_ON, AUTH_OFF):
            raise WattError(f"auth mode must be '{AUTH_ON}' or '{AUTH_OFF}', got '{mode}'")
        with self._connect() as db:
            if mode == AUTH_OFF:
                active = db.execute("SELECT COUNT(*) FROM keys WHERE revoked IS NULL").fetchone()[0]
                if active:
                    raise WattError(f"{active} active key(s) exist; revoke them (`watt keys revoke NAME`) before "
                                    "turning auth off")
            _set_mode(db, mode)

    def list(self) -> list[KeyRecord]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM keys ORDER BY created").fetchall()
        return [_record(row) for row in rows]

    def revoke(self, ref: str) -> KeyRecord:
        """Revoke the active key whose name or shown prefix is `ref`."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM keys WHERE revoked IS NULL AND (name = ? OR prefix = ?)", (ref, ref)
            ).fetchall()
            if not rows:
                raise NotFound(f"no active key with name or prefix '{ref}' (the 12 characters `watt keys list` shows)")
            if len(rows) > 1:
                raise WattError(f"'{ref}' matches {len(rows)} active keys; give the name or the full prefix")
            revoked = time.time()
            db.execute("UPDATE keys SET revoked = ? WHERE hash = ?", (revoked, rows[0]["hash"]))
        return replace(_record(rows[0]), revoked=revoked)

    def any_active(self) -> bool:
        with self._connect() as db:
            return db.execute("SELECT 1 FROM keys WHERE revoked IS NULL LIMIT 1").fetchone() is not None

    def lookup(self, key: str) -> KeyRecord | None:
        """The active record of a presented key, or None (unknown or revoked)."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM keys WHERE hash = ? AND revoked IS NULL", (hash_key(key),)).fetchone()
        return _record(row) if row else None


def _set_mode(db: sqlite3.Connection, mode: str) -> None:
    db.execute("INSERT INTO key_settings (name, value) VALUES ('auth', ?) "
               "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (mode,))


def _record(row: sqlite3.Row) -> KeyRecord:
    return KeyRecord(name=row["name"], prefix=row["prefix"], created=row["created"], revoked=row["revoked"],
                     rate_limit=row["rate_limit"], hash=row["hash"])
