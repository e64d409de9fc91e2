"""Sign-in once keys exist, the session cookie, CSRF on every state-changing request, the gate between
console and API, and upload checks."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient

from wattlm.console.auth_pages import safe_next
from wattlm.console.uploads import checked_name, save_upload
from wattlm.serve.keys import KeyStore

from .conftest import console_app, csrf_of

STATE_CHANGING = [  # (path, how the page sends it)
    ("/lang", "form"), ("/logout", "form"), ("/keys", "form"), ("/keys/revoke", "form"),
    ("/models/grid-task/serve", "form"), ("/kb/grid-docs/remove", "form"),
    ("/console-api/kb/grid-docs/search", "json"), ("/console-api/eval/run", "json"),
    ("/console-api/eval/tasks?name=t.jsonl", "raw"), ("/console-api/kb/grid-docs/documents?name=d.md", "raw"),
]


def test_session_cookie_is_httponly_and_strict(client):
    cookie = client.get("/").headers["set-cookie"]
    assert "watt_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_security_headers_keep_pages_on_their_own_origin(client):
    headers = client.get("/").headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(("path", "how"), STATE_CHANGING)
def test_state_changing_requests_need_the_csrf_token(client, path, how):
    client.get("/")  # a session, but no token sent back
    if how == "form":
        response = client.post(path, data={"lang": "zh", "name": "x"})
    elif how == "json":
        response = client.post(path, json={"query": "x", "models": ["a"], "tasks": ["b"]})
    else:
        response = client.post(path, content=b"x")
    assert response.status_code == 403, (path, response.text)
    wrong = client.post(path, data={"csrf": "not-the-token"}, headers={"X-CSRF-Token": "not-the-token"})
    assert wrong.status_code == 403


def test_sign_in_is_required_once_a_key_exists(console_home):
    with TestClient(console_app(console_home)) as client:
        assert client.get("/").status_code == 200  # no key yet: open (loopback only, as the API)
        key, _ = KeyStore.of_home(console_home).create("alice")
        response = client.get("/models/grid-task", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/login?next=/models/grid-task"
        assert client.get("/console-api/datasets/x/preview?step=a").status_code == 401
        assert client.get("/static/console.css").status_code == 200  # the login page needs its assets
        login = client.get("/login")
        token = csrf_of(login.text)
        bad = client.post("/login", data={"csrf": token, "key": "watt-" + "x" * 43, "next": "/"})
        assert bad.status_code == 401 and "Unknown or revoked key" in bad.text
        old_cookie = client.cookies.get("watt_session")
        signed = client.post("/login", data={"csrf": token, "key": key, "next": "/models/grid-task"},
                             follow_redirects=False)
        assert signed.status_code == 303 and signed.headers["location"] == "/models/grid-task"
        assert client.cookies.get("watt_session") != old_cookie  # a new session id after sign-in
        assert client.get("/models/grid-task").status_code == 200
        KeyStore.of_home(console_home).revoke("alice")  # revoking the key ends the session
        assert client.get("/", follow_redirects=False).status_code == 303


def test_login_needs_its_csrf_token(console_home):
    KeyStore.of_home(console_home).create("bob")
    with TestClient(console_app(console_home)) as client:
        client.get("/login")
        assert client.post("/login", data={"key": "watt-" + "x" * 43}).status_code == 403


def test_playground_calls_to_v1_carry_the_session_key_only_with_csrf(console_home):
    key, _ = KeyStore.of_home(console_home).create("carol")
    with TestClient(console_app(console_home)) as client:
        token = csrf_of(client.get("/login").text)
        client.post("/login", data={"csrf": token, "key": key, "next": "/"})
        token = csrf_of(client.get("/playground").text)
        body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}], "knowledge": False}
        assert client.post("/v1/chat/completions", json=body).status_code == 401  # cookie alone: not enough
        answer = client.post("/v1/chat/completions", json=body, headers={"X-CSRF-Token": token})
        assert answer.status_code == 200, answer.text
        assert client.get("/v1/models").status_code == 200  # a read: the cookie is enough
    with TestClient(console_app(console_home)) as stranger:
        assert stranger.get("/v1/models").status_code == 401


def test_api_paths_never_reach_the_console_and_console_paths_never_the_api(client):
    assert client.get("/health").json()  # the API's
    assert client.get("/v1/models").json()["data"][0]["id"] == "echo"
    assert client.get("/", headers={"Authorization": "Bearer junk"}).status_code == 200  # the console's


def test_first_key_created_in_the_console_keeps_its_creator_signed_in(client, console_home):
    token = csrf_of(client.get("/keys").text)
    created = client.post("/keys", data={"csrf": token, "name": "ops"})
    assert created.status_code == 200
    shown = created.text.split('id="new-key">')[1].split("<")[0]
    assert shown.startswith("watt-") and KeyStore.of_home(console_home).lookup(shown) is not None
    listing = client.get("/keys")
    assert listing.status_code == 200 and shown not in listing.text  # shown once
    assert shown[:12] in listing.text


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example", "/\\evil", "", None, "relative"])
def test_sign_in_redirects_only_within_the_site(target):
    assert safe_next(target) == "/"
    assert safe_next("/models/x") == "/models/x"


@pytest.mark.parametrize("name", ["../x.md", "a/b.md", "a\\b.md", ".env.md", "x.exe", "", " x.md", "a..b.md",
                                  "x\n.md"])
def test_upload_names_that_are_not_plain_file_names_are_refused(name):
    with pytest.raises(HTTPException):
        checked_name(name)


def test_upload_names_in_chinese_and_english_pass():
    assert checked_name("变电站规程 2024.md") == "变电站规程 2024.md"
    assert checked_name("relay-test_v2.txt") == "relay-test_v2.txt"


class _FakeRequest:
    def __init__(self, pieces: list[bytes], declared: int | None = None) -> None:
        self.headers = {"content-length": str(declared)} if declared is not None else {}
        self._pieces = pieces

    async def stream(self):
        for piece in self._pieces:
            yield piece


def test_uploads_are_size_capped_even_when_the_length_lies(tmp_path):
    folder = tmp_path / "up"
    with pytest.raises(HTTPException) as declared:
        asyncio.run(save_upload(_FakeRequest([b"x"], declared=100), folder, "a.md", max_bytes=10))
    assert declared.value.status_code == 413
    with pytest.raises(HTTPException) as streamed:
        asyncio.run(save_upload(_FakeRequest([b"x" * 8, b"x" * 8], declared=5), folder, "a.md", max_bytes=10))
    assert streamed.value.status_code == 413
    assert not any(folder.iterdir())  # no partial file left
    saved = asyncio.run(save_upload(_FakeRequest([b"hello"]), folder, "a.md", max_bytes=10))
    assert saved == folder / "a.md" and saved.read_bytes() == b"hello"
