"""The keys page: create an API key (shown once, on the page that answers the create), list, revoke.

Creating the first key closes the server (keys are required from then on); the session that created it
is signed in with it, so its creator is not locked out of the console at once."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Request

from wattlm.console.i18n import register
from wattlm.console.pages import home_of, render
from wattlm.console.security import CsrfChecked, form_fields, session_of
from wattlm.errors import WattError
from wattlm.serve.keys import KeyStore, parse_rate_limit

router = APIRouter()

register({
    "keys.title": {"en": "API keys", "zh": "API 密钥"},
    "keys.mode_on": {"en": "Keys are required: every API request and console visit needs one.",
                     "zh": "已启用密钥：每个 API 请求和控制台访问都需要密钥。"},
    "keys.mode_off": {"en": "No key is required yet: anyone who can connect may use the server. Creating a key closes it.",
                      "zh": "尚未要求密钥：任何能连接的人都可以使用服务器。创建密钥后将需要密钥。"},
    "keys.create": {"en": "Create a key", "zh": "创建密钥"},
    "keys.name": {"en": "Key name", "zh": "密钥名称"},
    "keys.rate": {"en": "Rate limit (e.g. 60/min, optional)", "zh": "速率限制（如 60/min，可选）"},
    "keys.created_once": {"en": "Store this key now; it is shown only once:", "zh": "请立即保存此密钥，它只显示这一次："},
    "keys.prefix": {"en": "Prefix", "zh": "前缀"},
    "keys.limit": {"en": "Requests/min", "zh": "每分钟请求数"},
    "keys.active": {"en": "active", "zh": "有效"},
    "keys.revoked": {"en": "revoked", "zh": "已吊销"},
    "keys.revoke": {"en": "Revoke", "zh": "吊销"},
    "keys.revoke_label": {"en": "Revoke key", "zh": "吊销密钥"},
    "keys.unlimited": {"en": "unlimited", "zh": "不限"},
})


def store_of(request: Request) -> KeyStore:
    return KeyStore.of_home(home_of(request))


def keys_context(request: Request) -> dict:
    store = store_of(request)
    return {"keys": store.list(), "auth_on": store.auth_required()}


@router.get("/keys")
def keys_page(request: Request):
    return render(request, "keys.html", new_key=None, error=None, **keys_context(request))


@router.post("/keys", dependencies=[CsrfChecked])
async def create_key(request: Request):
    fields = await form_fields(request)
    store = store_of(request)
    try:
        rate = fields.get("rate_limit", "").strip()
        was_open = not store.auth_required()
        key, record = await asyncio.to_thread(store.create, fields.get("name", ""), parse_rate_limit(rate) if rate else None)
    except WattError as error:
        return render(request, "keys.html", status_code=400, new_key=None, error=str(error), **keys_context(request))
    session = session_of(request)
    if was_open or session.key is None:  # the first key: keep its creator signed in
        request.state.session = request.app.state.sessions.sign_in(session, key, record.name)
    return render(request, "keys.html", new_key=key, new_name=record.name, error=None, **keys_context(request))


@router.post("/keys/revoke", dependencies=[CsrfChecked])
async def revoke_key(request: Request):
    prefix = (await form_fields(request)).get("prefix", "")
    try:
        await asyncio.to_thread(store_of(request).revoke, prefix)
    except WattError as error:
        raise HTTPException(400, str(error)) from error
    return render(request, "keys.html", new_key=None, error=None, **keys_context(request))
