"""The console app and how it is mounted in front of the API app of `watt serve`.

The console is its own FastAPI app; `mount(api_app, home)` puts a small ASGI gate in front of the
API app's middleware: paths whose first segment is one of the API's (`/v1`, `/health`, ...) go on to
the API as before, everything else goes to the console. The console therefore never passes through
the API-key middleware (it signs people in with its own session cookie, `security.py`), and the API
never sees a console page. A signed-in session's calls to `/v1` (the playground) are sent on with the
session's key, when they carry the session's CSRF token.

Page modules each hold one `router`; `PAGE_ROUTERS` is the table of them (console-jobs adds its runs
page here with one line).
"""

from __future__ import annotations

import asyncio
import hmac
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException

from wattlm.console import auth_pages, datasets, evals, kbs, keys, models, overview, playground, runs
from wattlm.console.pages import HERE, render
from wattlm.console.security import CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE, Sessions
from wattlm.errors import NotFound
from wattlm.serve.auth import ApiKeyMiddleware, KeyAuth
from wattlm.serve.keys import KeyStore

PAGE_ROUTERS = (
    auth_pages.router,
    overview.router,
    models.router,
    datasets.router,
    playground.router,
    kbs.router,
    evals.router,
    keys.router,
    runs.router,
)
OPEN_PATHS = ("/login", "/static/", "/lang", "/favicon.ico")  # reachable before signing in
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
SECURITY_HEADERS = {"content-security-policy": CONTENT_SECURITY_POLICY, "x-content-type-options": "nosniff",
                    "referrer-policy": "same-origin"}


def create_console(home: Path, api_app: FastAPI | None = None, auth: KeyAuth | None = None,
                   sessions: Sessions | None = None) -> FastAPI:
    """The console app over the workspace `home`; `api_app` is the serving app whose models the
    playground talks to (None: a console with no API beside it, as in page tests)."""
    console = FastAPI(title="wattlm console", docs_url=None, redoc_url=None, openapi_url=None)
    console.state.home = Path(home).resolve()
    console.state.api_app = api_app
    console.state.auth = auth or KeyAuth(KeyStore.of_home(console.state.home))
    console.state.sessions = sessions or Sessions()
    console.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for router in PAGE_ROUTERS:
        console.include_router(router)
    console.add_exception_handler(HTTPException, _http_error)
    console.add_exception_handler(NotFound, _not_found)

    console.add_middleware(SessionGate, console=console)
    return console


class SessionGate:
    """ASGI middleware of the console: gives each request its session (a new one, with its cookie, to a
    new visitor), sends visitors who are not signed in to /login while keys are required, and adds the
    security headers. Plain ASGI rather than `@app.middleware("http")`: streamed answers (the runs
    page's event stream) pass through untouched and see the client's disconnect."""

    def __init__(self, app: Any, console: FastAPI) -> None:
        self.app = app
        self.console = console

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        store: Sessions = self.console.state.sessions
        session = store.get(request.cookies.get(SESSION_COOKIE))
        fresh = session is None
        if fresh:
            session = store.new()
        state = scope.setdefault("state", {})
        state["session"] = session
        secure = scope.get("scheme") == "https"

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                current = state["session"]
                if fresh or current is not session:  # a new visitor, or a sign-in/out swapped it
                    headers.append("set-cookie", session_cookie(current.token, secure))
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        path = scope.get("path", "/")
        if path.startswith(OPEN_PATHS) or await signed_in(self.console.state.auth, session):
            await self.app(scope, receive, send_with_headers)
            return
        if request.method in SAFE_METHODS and not path.startswith("/console-api/"):
            response: Response = RedirectResponse(f"/login?next={quote(path)}", status_code=303)
        else:
            response = JSONResponse({"error": "sign in first"}, status_code=401)
        await response(scope, receive, send_with_headers)


def session_cookie(token: str, secure: bool) -> str:
    """The Set-Cookie value of a session: HttpOnly, SameSite=Strict, Secure behind TLS."""
    response = Response()
    set_session_cookie(response, token, secure)
    return response.headers["set-cookie"]


def set_session_cookie(response: Response, token: str, secure: bool) -> None:
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/")


async def signed_in(auth: KeyAuth, session) -> bool:
    """Whether the session may see console pages: always while no key is required, else with a key
    that is still active (re-read through the cache, so revoking it ends the session)."""
    required = auth.cached_required()
    if required is None:
        required = await asyncio.to_thread(auth.keys_required)
    if not required:
        return True
    if session.key is None:
        return False
    fresh, record = auth.cached_record(session.key)
    if not fresh:
        record = await asyncio.to_thread(auth.record, session.key)
    return record is not None


async def _not_found(request: Request, error: NotFound) -> Response:
    """An id or name the registry (or a KB) does not know: the same 404 page or JSON as any other."""
    return await _http_error(request, HTTPException(404, str(error)))


async def _http_error(request: Request, error: HTTPException) -> Response:
    if request.url.path.startswith("/console-api/") or request.method not in SAFE_METHODS:
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code)
    return render(request, "error.html", status_code=error.status_code, status=error.status_code,
                  message=str(error.detail))


class ConsoleGate:
    """ASGI: API paths to the API app (with a signed-in session's key added to the console's own
    calls), every other path to the console."""

    def __init__(self, app: Any, console: FastAPI, api_prefixes: frozenset[str]) -> None:
        self.app = app
        self.console = console
        self.api_prefixes = api_prefixes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):  # lifespan: the API app's
            await self.app(scope, receive, send)
            return
        first = scope.get("path", "/").lstrip("/").split("/", 1)[0]
        if first not in self.api_prefixes:
            await self.console(scope, receive, send)
            return
        await self.app(self._with_session_key(scope), receive, send)

    def _with_session_key(self, scope: dict) -> dict:
        headers = scope.get("headers") or []
        names = {name for name, _ in headers}
        if b"authorization" in names:
            return scope
        session = self.console.state.sessions.get(_cookie(headers, SESSION_COOKIE))
        if session is None or session.key is None:
            return scope
        if scope.get("method", "GET") not in SAFE_METHODS:
            sent = next((value.decode("latin-1") for name, value in headers if name == CSRF_HEADER.encode()), "")
            if not hmac.compare_digest(sent, session.csrf):
                return scope  # no token: the API sees an anonymous request (401 while keys are required)
        return {**scope, "headers": [*headers, (b"authorization", f"Bearer {session.key}".encode())]}


def _cookie(headers: list, name: str) -> str | None:
    from http.cookies import SimpleCookie

    for header, value in headers:
        if header == b"cookie":
            jar = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header: no session
                return None
            if name in jar:
                return jar[name].value
    return None


def api_prefixes(api_app: FastAPI) -> frozenset[str]:
    """The first path segments of the API's routes (v1, health, metrics, openapi.json, ...): the paths
    of its OpenAPI schema, plus routes left out of it, found by walking included routers."""
    paths = set(api_app.openapi().get("paths", {}))
    pending = list(api_app.routes)
    while pending:
        route = pending.pop()
        if getattr(route, "path", None):
            paths.add(route.path)
        for nested in (getattr(route, "original_router", None), getattr(route, "router", None)):
            pending.extend(getattr(nested, "routes", None) or [])
    firsts = {path.lstrip("/").split("/", 1)[0] for path in paths}
    return frozenset(first for first in firsts if first and not first.startswith("{"))


def mount(api_app: FastAPI, home: Path) -> FastAPI:
    """Serve the console at `/` of `api_app` (the app of `watt serve`); returns the console app."""
    auth = next((m.kwargs.get("auth") for m in api_app.user_middleware if m.cls is ApiKeyMiddleware), None)
    console = create_console(home, api_app, auth=auth)
    api_app.add_middleware(ConsoleGate, console=console, api_prefixes=api_prefixes(api_app))
    return console
