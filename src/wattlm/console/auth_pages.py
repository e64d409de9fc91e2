"""Sign in with an API key, sign out, and the language switch."""

from __future__ import annotations

import asyncio
import hmac

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse

from wattlm.console.i18n import LANG_COOKIE, LANGUAGES
from wattlm.console.pages import render
from wattlm.console.security import CSRF_FIELD, form_fields, require_csrf, session_of
from wattlm.serve.keys import well_formed

router = APIRouter()


def safe_next(target: str | None) -> str:
    """Only a path on this site (`/models/x`), never `//evil.example` or `https://...` (open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
async def login_page(request: Request, next: str = "/"):
    return render(request, "login.html", next=safe_next(next), failed=False)


@router.post("/login")
async def login(request: Request):
    fields = await form_fields(request)
    session = session_of(request)
    # The CSRF check by hand: the form is the only place the token can come from before signing in.
    if not hmac.compare_digest(fields.get(CSRF_FIELD, ""), session.csrf):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
    key = fields.get("key", "").strip()
    auth = request.app.state.auth
    record = await asyncio.to_thread(auth.record, key) if well_formed(key) else None
    if record is None:
        return render(request, "login.html", status_code=401, next=safe_next(fields.get("next")), failed=True)
    request.state.session = request.app.state.sessions.sign_in(session, key, record.name)
    return RedirectResponse(safe_next(fields.get("next")), status_code=303)


@router.post("/logout")
async def logout(request: Request):
    await require_csrf(request)
    sessions = request.app.state.sessions
    sessions.drop(session_of(request).token)
    request.state.session = sessions.new()
    return RedirectResponse("/login", status_code=303)


@router.post("/lang")
async def switch_language(request: Request):
    await require_csrf(request)
    fields = await form_fields(request)
    lang = fields.get("lang", "")
    if lang not in LANGUAGES:
        raise HTTPException(400, f"lang must be one of {', '.join(LANGUAGES)}")
    response = RedirectResponse(safe_next(fields.get("next")), status_code=303)
    response.set_cookie(LANG_COOKIE, lang, samesite="strict", httponly=True, max_age=365 * 86400)
    return response
