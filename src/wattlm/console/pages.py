"""What every console page shares: the template environment, `render`, and the registry dependency."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from wattlm.console.i18n import LANG_COOKIE, LANGUAGES, labels_for, language_of, translate
from wattlm.registry import Registry

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


@jinja2.pass_context
def _t(context: jinja2.runtime.Context, key: str) -> str:
    return translate(key, context.get("lang", "en"))


def _when(stamp: float | None) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M") if stamp else ""


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:,.4g}"


def _as_json(value: Any) -> Markup:
    """JSON for a `<script type="application/json">` block: `<` escaped so the text cannot close the tag."""
    return Markup(json.dumps(value, ensure_ascii=False).replace("<", "\\u003c"))


templates.env.globals["t"] = _t
templates.env.filters["when"] = _when
templates.env.filters["number"] = _number
templates.env.filters["as_json"] = _as_json


def render(request: Request, name: str, status_code: int = 200, **context: Any):
    """A page, with the language, the session's CSRF token and the labels of its scripts."""
    lang = language_of(request.cookies.get(LANG_COOKIE))
    session = getattr(request.state, "session", None)
    context.update(lang=lang, languages=LANGUAGES, csrf=session.csrf if session else "",
                   signed_in_as=session.key_name if session else None, script_labels=labels_for(lang, "js."),
                   path=request.url.path)
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def home_of(request: Request) -> Path:
    return request.app.state.home


@contextmanager
def registry_of(request: Request) -> Iterator[Registry]:
    """A registry connection for one request, opened and closed in the route's own thread (sqlite
    connections stay in the thread that made them, and FastAPI may run a sync dependency in another)."""
    registry = Registry(home_of(request), sweep=False)
    try:
        yield registry
    finally:
        registry.close()
