"""API keys: `watt keys` on the registry database, and the server's 401 / 429 answers."""

from __future__ import annotations

import json
import sqlite3

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from wattlm.errors import NotFound, WattError
from wattlm.serve import create_app
from wattlm.serve.auth import KeyAuth, TokenBucket
from wattlm.serve.cli import keys_app
from wattlm.serve.keys import KeyStore, hash_key, parse_rate_limit

from .fakes import FakeEngine
from .test_app import assert_openai_error

runner = CliRunner()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def invoke(*args: str) -> dict | list:
    result = runner.invoke(keys_app, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


# ---- the store and the CLI ---------------------------------------------------------------------


def test_create_prints_the_key_once_and_stores_only_its_hash(home):
    created = invoke("create", "ci-bot", "--rate-limit", "30/min", "--home", str(home))
    key = created["key"]
    assert key.startswith("watt-") and len(key) > 40 and created["prefix"] == key[:12]
    assert created["rate_limit"] == 30 and created["active"] is True
    with sqlite3.connect(home / "registry.sqlite") as db:  # the registry's own database
        rows = db.execute("SELECT * FROM keys").fetchall()
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"artifacts", "keys"} <= tables
    assert len(rows) == 1 and key not in json.dumps(rows) and hash_key(key) in rows[0]
    listed = invoke("list", "--home", str(home))
    assert [row["name"] for row in listed] == ["ci-bot"] and "key" not in listed[0] and "hash" not in listed[0]


def test_revoke_by_name_or_prefix_and_list_shows_it(home):
    first = invoke("create", "a", "--home", str(home))
    invoke("create", "b", "--home", str(home))
    assert invoke("revoke", first["prefix"], "--home", str(home))["name"] == "a"
    assert invoke("revoke", "b", "--home", str(home))["revoked"] is not None
    assert [row["active"] for row in invoke("list", "--home", str(home))] == [False, False]
    plain = runner.invoke(keys_app, ["list", "--home", str(home)])
    assert "revoked" in plain.output and first["prefix"] in plain.output


def test_key_errors(home):
    invoke("create", "dup", "--home", str(home))
    with pytest.raises(WattError, match="active key named 'dup'"):
        runner.invoke(keys_app, ["create", "dup", "--home", str(home)], catch_exceptions=False)
    with pytest.raises(NotFound, match="ghost"):
        runner.invoke(keys_app, ["revoke", "ghost", "--home", str(home)], catch_exceptions=False)
    with pytest.raises(WattError, match="rate limit 'lots'"):
        runner.invoke(keys_app, ["create", "x", "--rate-limit", "lots", "--home", str(home)], catch_exceptions=False)
    invoke("revoke", "dup", "--home", str(home))
    assert invoke("create", "dup", "--home", str(home))["active"]  # a revoked name may be reused


@pytest.mark.parametrize(("text", "per_minute"), [("60", 60), ("60/min", 60), ("2/s", 120), ("120/h", 2), ("1.5/m", 1.5)])
def test_rate_limit_units(text, per_minute):
    assert parse_rate_limit(text) == pytest.approx(per_minute)


@pytest.mark.parametrize("text", ["0/min", "-1", "5/day", ""])
def test_bad_rate_limits(text):
    with pytest.raises(WattError):
        parse_rate_limit(text)


def test_token_bucket_allows_a_burst_then_one_per_interval():
    bucket = TokenBucket(rate_per_minute=2, tokens=2, updated=0.0)
    assert bucket.take(0.0) == 0.0 and bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == pytest.approx(30.0)  # refills one request per 30 s
    assert bucket.take(29.0) == pytest.approx(1.0)
    assert bucket.take(30.0) == 0.0


# ---- the server ---------------------------------------------------------------------------------


@pytest.fixture
def keyed(home):
    """(client, store, clock) of an app whose keys live in a fresh registry."""
    from wattlm.registry import Registry

    Registry(home).close()
    store = KeyStore.of_home(home)
    clock = Clock()
    app = create_app({"fake": FakeEngine(name="fake")}, auth=KeyAuth(store, cache_seconds=2.0, clock=clock))
    with TestClient(app) as client:
        yield client, store, clock


def completion(client, key: str | None = None, path: str = "/v1/completions"):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.post(path, json={"model": "fake", "prompt": "hi", "max_tokens": 1}, headers=headers)


def test_without_keys_the_server_is_open(keyed):
    client, _, _ = keyed
    assert completion(client).status_code == 200


def test_once_a_key_exists_every_route_but_health_needs_it(keyed):
    client, store, clock = keyed
    assert completion(client).status_code == 200
    key, _ = store.create("app")
    clock.now += 2.1  # the "any key exists?" answer is cached for 2 s
    error = assert_openai_error(completion(client), 401, "Authorization: Bearer")
    assert error["code"] == "missing_api_key"
    assert_openai_error(completion(client, "watt-wrong"), 401, "invalid API key")
    assert completion(client, key).status_code == 200
    assert client.get("/v1/models").status_code == 401
    assert client.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert client.post("/tokenize", json={"model": "fake", "prompt": "x"}).status_code == 401
    assert client.get("/health").status_code == 200 and client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert client.get("/v1/models", headers={"Authorization": key}).status_code == 401  # no "Bearer"


def test_revoked_key_is_refused_once_the_cache_expires(keyed):
    client, store, clock = keyed
    key, _ = store.create("app")
    other, _ = store.create("other")  # keys stay required after the first is revoked
    clock.now += 3
    assert completion(client, key).status_code == 200
    store.revoke("app")
    assert completion(client, key).status_code == 200  # cached for up to 2 s
    clock.now += 2.1
    assert_openai_error(completion(client, key), 401, "revoked")
    assert completion(client, other).status_code == 200


def test_rate_limit_is_per_key_with_retry_after(keyed):
    client, store, clock = keyed
    slow, _ = store.create("slow", rate_limit=2)
    fast, _ = store.create("fast")
    clock.now += 3
    assert [completion(client, slow).status_code for _ in range(2)] == [200, 200]
    refused = completion(client, slow)
    error = assert_openai_error(refused, 429, "2 requests/min", "slow")
    assert error["code"] == "rate_limit_exceeded" and refused.headers["Retry-After"] == "30"
    assert all(completion(client, fast).status_code == 200 for _ in range(5))  # other keys are unaffected
    clock.now += 30
    assert completion(client, slow).status_code == 200


def test_official_client_raises_authentication_and_rate_limit_errors(home):
    openai = pytest.importorskip("openai")
    from wattlm.registry import Registry
    from wattlm.serve import running_server

    Registry(home).close()
    store = KeyStore.of_home(home)
    key, _ = store.create("sdk", rate_limit=1)
    app = create_app({"fake": FakeEngine(name="fake")}, auth=KeyAuth(store))
    with running_server(app) as url:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{url}/v1", api_key="watt-nope", max_retries=0).models.list()
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
        assert client.completions.create(model="fake", prompt="hi", max_tokens=2).choices[0].text == "Hello from"
        with pytest.raises(openai.RateLimitError):
            client.completions.create(model="fake", prompt="hi", max_tokens=2)
