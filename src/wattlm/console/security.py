"""Sign-in, sessions and CSRF for the console.

Once API keys are required (`KeyStore.auth_required`), every console page needs a session signed in
with a key. Sessions live in this process's memory only (a restart signs everyone out): a random
token in the `watt_session` cookie (HttpOnly, SameSite=Strict, Secure behind TLS) maps to the key,
so the console's own calls to `/v1` (the playground) can be sent on with that key, and its record
is re-checked on each request through the server's `KeyAuth` cache, so a revoked key ends its
sessions within seconds.

Every visitor gets a session, signed in or not, because it carries the CSRF token: each
state-changing request (any method but GET/HEAD/OPTIONS) must send it back, in the form field
`csrf` or the header `X-CSRF-Token` (`require_csrf`). SameSite=Strict already keeps other sites'
requests from carrying the cookie; the token is the second lock.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, HTTPException, Request

SESSION_COOKIE = "watt_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_SESSIONS = 10_000  # anonymous visitors get sessions too; the oldest go first beyond this
SESSION_SECONDS = 12 * 3600
MAX_FORM_BYTES = 64 * 1024


@dataclass
class Session:
    token: str
    csrf: str
    created: float = field(default_factory=time.time)
    key: str | None = None  # the API key it signed in with (memory only)
    key_name: str | None = None


class Sessions:
    """The console's sessions, by cookie token."""

    def __init__(self, clock=time.time) -> None:
        self._by_token: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def new(self) -> Session:
        session = Session(token=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32), created=self._clock())
        with self._lock:
            if len(self._by_token) >= MAX_SESSIONS:
                oldest = min(self._by_token.values(), key=lambda s: s.created)
                del self._by_token[oldest.token]
            self._by_token[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            session = self._by_token.get(token)
            if session and self._clock() - session.created > SESSION_SECONDS:
                del self._by_token[token]
                return None
            return session

    def sign_in(self, old: Session, key: str, key_name: str) -> Session:
        """A fresh session for the signed-in key (a new token: a cookie planted before sign-in is useless after)."""
        self.drop(old.token)
        session = self.new()
        session.key, session.key_name = key, key_name
        return session

    def drop(self, token: str) -> None:
        with self._lock:
            self._by_token.pop(token, None)


def session_of(request: Request) -> Session:
    """The request's session (the console middleware attached it before the route ran)."""
    return request.state.session


CurrentSession = Annotated[Session, Depends(session_of)]


async def form_fields(request: Request) -> dict[str, str]:
    """A url-encoded form body as {field: first value} (the console posts no multipart forms)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise HTTPException(413, f"form body over {MAX_FORM_BYTES} bytes")
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in parsed.items()}


async def require_csrf(request: Request) -> None:
    """Dependency of every state-changing console route: the session's CSRF token must come back."""
    if request.method in SAFE_METHODS:
        return
    session = session_of(request)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        sent = (await form_fields(request)).get(CSRF_FIELD)
    if not sent or not hmac.compare_digest(sent, session.csrf):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


CsrfChecked = Depends(require_csrf)
