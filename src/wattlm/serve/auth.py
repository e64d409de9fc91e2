"""API-key checks and per-key rate limits, as ASGI middleware in front of the app.

Keys are required once a key was ever created (`watt keys create`), and stay required after the last
one is revoked until an operator runs `watt keys auth off` (`KeyStore.auth_required`): a leaked key
that is revoked must not open the server to everyone. Before any key exists the server is open, and
`watt serve` then refuses a non-loopback bind unless `--insecure` is given (`check_bind`). Every route but `/health`,
`/metrics` and the OpenAPI docs then needs `Authorization: Bearer <key>`; the tokenizer endpoints are
included because they run the model's tokenizer (lm-eval's remote tokenizer sends the header too).

Answers, in OpenAI's error shape, match what the official clients expect: 401 (AuthenticationError)
for a missing, unknown or revoked key, 429 with Retry-After (RateLimitError, which the client waits
out and retries) when a key exceeds its requests per minute.

Database reads are cached for `cache_seconds` (2 s): a revoked key stops working within that time and
a burst of requests costs one SQLite read, not one per request.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wattlm.engines.base import EngineOverloaded
from wattlm.serve.keys import KeyRecord, KeyStore, hash_key, well_formed
from wattlm.serve.workers import WorkerPool

# /metrics is not open: per-model request counts and latencies tell an outsider what is served and how busy it is.
OPEN_PATHS = frozenset({"/health", "/openapi.json"})  # the Swagger/ReDoc pages are off (CDN assets)
LOOPBACK_HOST_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")
_MAX_CACHED_KEYS = 10_000  # bounds memory when clients send many random keys


@dataclass
class TokenBucket:
    """`rate_per_minute` requests per minute, with bursts of up to a minute's worth (at least one)."""

    rate_per_minute: float
    tokens: float
    updated: float

    @property
    def capacity(self) -> float:
        return max(self.rate_per_minute, 1.0)

    def take(self, now: float) -> float:
        """Spend one request; 0.0 if allowed, else the seconds until one is available."""
        per_second = self.rate_per_minute / 60.0
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * per_second)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / per_second


class KeyAuth:
    """Decides whether a presented key may make a request now."""

    def __init__(self, store: KeyStore, cache_seconds: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._required: tuple[float, bool] | None = None  # (read at, auth required)
        # key hash -> (read at, record); least recently used first out, so a flood of unknown keys
        # evicts other unknown keys before the keys of real clients.
        self._records: OrderedDict[str, tuple[float, KeyRecord | None]] = OrderedDict()
        self._buckets: dict[str, TokenBucket] = {}  # key hash -> its bucket
        # Database reads run here, not on the loop's shared executor: a burst of scoring or embedding
        # requests (or a slow SQLite writer) must not delay the key check of every other request.
        self.lookups = WorkerPool("key-lookup", workers=2, queue=1024)

    def cached_required(self) -> bool | None:
        """`keys_required()` if its cached answer is fresh, else None (no database read)."""
        with self._lock:
            if self._required and self._clock() - self._required[0] < self._cache_seconds:
                return self._required[1]
        return None

    def cached_record(self, key: str) -> tuple[bool, KeyRecord | None]:
        """(fresh?, record) from the cache only."""
        digest = hash_key(key)
        with self._lock:
            cached = self._records.get(digest)
            if cached and self._clock() - cached[0] < self._cache_seconds:
                self._records.move_to_end(digest)
                return True, cached[1]
        return False, None

    def keys_required(self) -> bool:
        now = self._clock()
        cached = self.cached_required()
        if cached is not None:
            return cached
        required = self._store.auth_required()
        with self._lock:
            self._required = (now, required)
        return required

    def record(self, key: str) -> KeyRecord | None:
        """The active record of `key` (None: unknown or revoked), at most `cache_seconds` old."""
        digest, now = hash_key(key), self._clock()
        with self._lock:
            cached = self._records.get(digest)
            if cached and now - cached[0] < self._cache_seconds:
                self._records.move_to_end(digest)
                return cached[1]
        record = self._store.lookup(key)
        with self._lock:
            self._records[digest] = (now, record)
            self._records.move_to_end(digest)
            while len(self._records) > _MAX_CACHED_KEYS:
                self._records.popitem(last=False)
        return record

    def wait_seconds(self, record: KeyRecord) -> float:
        """0.0 if `record` may make a request now (and count it), else seconds to wait."""
        if record.rate_limit is None:
            return 0.0
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(record.hash)
            if bucket is None or bucket.rate_per_minute != record.rate_limit:
                bucket = TokenBucket(record.rate_limit, max(record.rate_limit, 1.0), now)
                self._buckets[record.hash] = bucket
            return bucket.take(now)


class _LookupsFull(Exception):
    def __init__(self, error: EngineOverloaded) -> None:
        self.error = error


class ApiKeyMiddleware:
    """ASGI middleware: 401 without a valid key (when keys exist), 429 over a key's rate limit."""

    def __init__(self, app: Any, auth: KeyAuth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self._check(scope, receive, send)
        except _LookupsFull as full:  # the key-lookup queue is full: a flood of unknown keys
            await _send_lookups_full(send, full.error)

    async def _lookup(self, fn, *args):
        try:
            return await self.auth.lookups.run(fn, *args)
        except EngineOverloaded as error:
            raise _LookupsFull(error) from None

    async def _check(self, scope: dict, receive: Any, send: Any) -> None:
        # SQLite reads may wait on a writer's lock: keep them off the event loop (cache hits stay on it).
        required = self.auth.cached_required()
        if required is None:
            required = await self._lookup(self.auth.keys_required)
        if not required or scope.get("path", "") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        key = _bearer(scope)
        if key is None:
            await _send_error(send, 401, "missing API key: send the header 'Authorization: Bearer <key>' "
                              "(keys come from `watt keys create`)", "invalid_request_error", "missing_api_key",
                              {"www-authenticate": "Bearer"})
            return
        if not well_formed(key):  # no cache slot and no database read for random junk
            await _send_error(send, 401, "invalid API key: not a wattlm key (watt- and 43 characters)",
                              "invalid_request_error", "invalid_api_key", {"www-authenticate": "Bearer"})
            return
        fresh, record = self.auth.cached_record(key)
        if not fresh:
            record = await self._lookup(self.auth.record, key)
        if record is None:
            await _send_error(send, 401, f"invalid API key '{key[:12]}...': unknown or revoked",
                              "invalid_request_error", "invalid_api_key", {"www-authenticate": "Bearer"})
            return
        wait = self.auth.wait_seconds(record)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            await _send_error(send, 429, f"rate limit of {record.rate_limit:g} requests/min reached for key "
                              f"'{record.name}'; retry in {retry_after} s", "requests", "rate_limit_exceeded",
                              {"retry-after": str(retry_after)})
            return
        await self.app(scope, receive, send)


class LoopbackHostOnly:
    """ASGI middleware against DNS rebinding: while the server requires no key, answer only requests whose
    Host header is localhost, 127.0.0.1 or [::1].

    A web page can rebind its own DNS name to 127.0.0.1 and then script requests to an open local
    server from the victim's browser; the browser still sends the page's name in Host, so refusing other
    names closes that door. `watt serve` puts it outermost unless `--insecure` is given."""

    def __init__(self, app: Any, auth: KeyAuth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not _loopback_host_header(scope):
            required = self.auth.cached_required()
            if required is None:
                try:
                    required = await self.auth.lookups.run(self.auth.keys_required)
                except EngineOverloaded as error:  # a 503 to retry, as the key check answers, not a 500
                    await _send_lookups_full(send, error)
                    return
            if not required:
                await _send_error(send, 403, "Host header must be localhost, 127.0.0.1 or [::1] while the server "
                                  "has no API keys (create one with `watt keys create`, or start with --insecure)",
                                  "invalid_request_error", "host_not_allowed", {})
                return
        await self.app(scope, receive, send)


async def _send_lookups_full(send: Any, error: EngineOverloaded) -> None:
    await _send_error(send, 503, str(error), "server_error", "server_overloaded", {"retry-after": str(error.retry_after)})


def _loopback_host_header(scope: dict) -> bool:
    for name, value in scope.get("headers") or []:
        if name == b"host":
            host = value.decode("latin-1").strip().lower()
            if host.startswith("["):  # [::1]:8000
                host = host[: host.find("]") + 1]
            else:
                host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
            return host in LOOPBACK_HOST_NAMES
    return True  # HTTP/1.0 without Host: not a browser (browsers always send it)


def _bearer(scope: dict) -> str | None:
    for name, value in scope.get("headers") or []:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


async def _send_error(send: Any, status: int, message: str, type_: str, code: str, headers: dict[str, str]) -> None:
    payload = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    data = json.dumps(payload).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw_headers += [(name.encode(), value.encode()) for name, value in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": data})


def is_loopback(host: str) -> bool:
    """Whether a bind address (or a Host header's name) only reaches this machine."""
    import ipaddress

    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a hostname or "" (all interfaces): assume it is reachable from elsewhere


def check_bind(host: str, keys_required: bool, insecure: bool) -> None:
    """Refuse to serve an open server (no keys) on an address other machines can reach."""
    if is_loopback(host) or keys_required or insecure:
        return
    from wattlm.errors import WattError

    raise WattError(f"--host {host} (or WATT_HOST) would let anyone on the network use the models without a key; "
                    "create one first (`watt keys create NAME`), bind 127.0.0.1, or pass --insecure")
