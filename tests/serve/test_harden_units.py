"""The hardening pieces one at a time, without a model: schema caps, grammar cache, fail-closed keys,
bind and Host checks, key format, body-read timeout, list caps."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from wattlm.engines import grammar
from wattlm.engines.params import JsonConstraint
from wattlm.engines.schema_limits import MAX_SCHEMA_COUNT, SchemaTooLarge, check_pattern, check_schema
from wattlm.errors import WattError
from wattlm.serve import create_app
from wattlm.serve.auth import KeyAuth, LoopbackHostOnly, check_bind, is_loopback
from wattlm.serve.cli import keys_app
from wattlm.serve.keys import KeyStore, well_formed
from wattlm.serve.limits import BodySizeLimit
from wattlm.serve.workers import WorkerPool

from .fakes import FakeEngine

# ---- response_format schemas ---------------------------------------------------------------------


@pytest.mark.parametrize("pattern, atoms", [("^[A-Z]{3}-[0-9]{4}$", 8), ("(ab){3}c", 7), ("a|b*", 2),
                                            (r"\d{256}", 256), ("[{]{2}", 2)])
def test_patterns_within_the_caps_count_their_expansion(pattern, atoms):
    assert check_pattern(pattern) == atoms


@pytest.mark.parametrize("pattern, reason", [("a{100000}", "counts up to 256"), ("a{2,257}", "counts up to 256"),
                                             ("((a{200}){200}){200}", "4096"), ("(" * 40 + "a" + ")" * 40, "levels")])
def test_patterns_beyond_the_caps_are_refused(pattern, reason):
    with pytest.raises(SchemaTooLarge, match=reason.replace("{", r"\{")):
        check_pattern(pattern)


def test_schema_counts_depth_and_size_are_capped_and_name_the_field():
    ok = {"type": "object", "properties": {"name": {"type": "string", "maxLength": MAX_SCHEMA_COUNT}}}
    check_schema(ok)
    check_schema(json.dumps(ok))
    with pytest.raises(SchemaTooLarge, match=r"schema\.properties\.name\.maxLength is 257; .* at most 256"):
        check_schema({"type": "object", "properties": {"name": {"type": "string", "maxLength": 257}}})
    with pytest.raises(SchemaTooLarge, match=r"items\.minItems is 2000000"):
        check_schema({"type": "array", "items": {"type": "array", "minItems": 2000000}})
    deep: dict = {"type": "string"}
    for _ in range(17):
        deep = {"type": "object", "properties": {"a": deep}}
    with pytest.raises(SchemaTooLarge, match="16 levels deep"):
        check_schema(deep)
    with pytest.raises(SchemaTooLarge, match="bytes of JSON"):
        check_schema({"type": "string", "enum": ["x" * 1000] * 100})
    check_schema({"type": "string", "enum": [{"maxLength": 10**9}]})  # literal values are not schemas


def test_grammar_size_is_capped_and_the_cache_is_bounded_by_bytes(monkeypatch):
    pytest.importorskip("llama_cpp")
    monkeypatch.setattr(grammar, "MAX_GRAMMAR_BYTES", 2000)
    monkeypatch.setattr(grammar, "_CACHE", grammar.GrammarCache(max_bytes=10_000))
    many = {"type": "object", "properties": {f"p{i}": {"type": "string", "maxLength": 200} for i in range(5)}}
    with pytest.raises(WattError, match="grammar of .* bytes; this server allows at most 2000"):
        grammar.json_grammar(JsonConstraint(json.dumps(many)))
    cache = grammar.GrammarCache(max_bytes=1000)
    for index in range(10):
        cache.put(JsonConstraint(f'{{"n": {index}}}'), "x" * 300)
    assert cache.size_bytes <= 1000
    assert cache.get(JsonConstraint('{"n": 9}')) is not None and cache.get(JsonConstraint('{"n": 0}')) is None
    cache.put(JsonConstraint("{}"), "y" * 5000)  # larger than the whole cache: not kept
    assert cache.get(JsonConstraint("{}")) is None


# ---- keys fail closed ------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    return KeyStore.of_home(tmp_path)


def test_auth_stays_on_after_the_last_key_is_revoked_until_turned_off(store):
    assert store.auth_mode() == "off" and not store.auth_required()
    store.create("leaked")
    store.revoke("leaked")
    assert store.auth_required()
    store.create("second")
    with pytest.raises(WattError, match="revoke them"):
        store.set_auth_mode("off")
    store.revoke("second")
    store.set_auth_mode("off")
    assert not store.auth_required()
    with pytest.raises(WattError, match="must be 'on' or 'off'"):
        store.set_auth_mode("maybe")


def test_a_database_from_before_the_mode_counts_keys_ever_created(store):
    import sqlite3

    store.create("old")
    store.revoke("old")
    with sqlite3.connect(store.db_path) as db:
        db.execute("DELETE FROM key_settings")
    assert store.auth_required()


def test_watt_keys_auth_shows_and_sets_the_mode(tmp_path):
    runner = CliRunner()

    def invoke(*args):
        result = runner.invoke(keys_app, [*args, "--home", str(tmp_path), "--json"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    assert invoke("auth") == {"auth": "off"}
    invoke("create", "k")
    invoke("revoke", "k")
    assert invoke("auth") == {"auth": "on"}
    assert invoke("auth", "off") == {"auth": "off"}


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_loopback_binds_are_always_allowed(host):
    assert is_loopback(host)
    check_bind(host, keys_required=False, insecure=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "example.org", ""])
def test_a_reachable_bind_without_keys_needs_insecure(host):
    with pytest.raises(WattError, match="--insecure"):
        check_bind(host, keys_required=False, insecure=False)
    check_bind(host, keys_required=True, insecure=False)
    check_bind(host, keys_required=False, insecure=True)


@pytest.mark.parametrize("args, env", [(["--host", "0.0.0.0"], {}), ([], {"WATT_HOST": "0.0.0.0"})])
def test_watt_serve_refuses_an_open_public_bind_before_loading(tmp_path, monkeypatch, args, env):
    import typer

    from wattlm.serve import launch as launch_module
    from wattlm.serve.cli import serve_command

    monkeypatch.setattr(launch_module, "model_source", lambda *a: pytest.fail("a model was loaded"))
    app = typer.Typer()
    app.command()(serve_command)
    result = CliRunner().invoke(app, ["--model", "m", "--home", str(tmp_path), *args], env=env)
    assert result.exit_code != 0 and "--insecure" in str(result.exception)


# ---- requests ---------------------------------------------------------------------------------------


class CountingStore(KeyStore):
    lookups = 0

    def lookup(self, key):
        CountingStore.lookups += 1
        return super().lookup(key)


def test_malformed_keys_are_refused_without_a_lookup_and_metrics_need_a_key(tmp_path):
    store = CountingStore(tmp_path / "registry.sqlite")
    key, _ = store.create("app")
    assert well_formed(key) and not well_formed("watt-short") and not well_formed(key + "x")
    app = create_app({"fake": FakeEngine(name="fake")}, auth=KeyAuth(store))
    with TestClient(app) as client:
        for junk in ("watt-wrong", "x" * 5000, key[:-1] + "!"):
            assert client.get("/v1/models", headers={"Authorization": f"Bearer {junk}"}).status_code == 401
        assert CountingStore.lookups == 0
        assert client.get("/metrics").status_code == 401
        assert client.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert CountingStore.lookups == 1
        assert client.get("/docs").status_code in (401, 404) and client.get("/openapi.json").status_code == 200


def test_an_open_server_answers_only_loopback_host_headers(tmp_path):
    store = KeyStore.of_home(tmp_path)
    auth = KeyAuth(store, cache_seconds=0)
    app = LoopbackHostOnly(create_app({"fake": FakeEngine(name="fake")}, auth=auth), auth)
    for host, status in (("evil.example", 403), ("localhost:8000", 200), ("127.0.0.1", 200), ("[::1]:80", 200)):
        with TestClient(app, base_url=f"http://{host}") as client:
            response = client.get("/v1/models")
            assert response.status_code == status, host
    store.create("k")  # with keys, the key decides: a rebinding page has none
    with TestClient(app, base_url="http://evil.example") as client:
        assert client.get("/v1/models").status_code == 401


def test_a_full_key_lookup_queue_answers_503_whatever_the_host(tmp_path):
    auth = KeyAuth(KeyStore.of_home(tmp_path), cache_seconds=0)
    auth.lookups = WorkerPool("key-lookup", workers=1, queue=0)
    app = LoopbackHostOnly(create_app({"fake": FakeEngine(name="fake")}, auth=auth), auth)
    release = threading.Event()
    blocker = threading.Thread(target=lambda: asyncio.run(auth.lookups.run(release.wait)))
    blocker.start()
    try:
        while auth.lookups.pending == 0:
            time.sleep(0.01)
        for host in ("evil.example", "localhost:8000"):  # the Host check's lookup, then the key check's
            with TestClient(app, base_url=f"http://{host}", raise_server_exceptions=False) as client:
                response = client.get("/v1/models")
                assert response.status_code == 503, host
                assert response.headers["retry-after"] == "1"
                assert response.json()["error"]["code"] == "server_overloaded"
    finally:
        release.set()
        blocker.join()
    with TestClient(app, base_url="http://evil.example") as client:
        assert client.get("/v1/models").status_code == 403


def test_a_trickled_body_times_out_with_408():
    sent = []

    async def app(scope, receive, send):  # pragma: no cover - never reached
        raise AssertionError("the app ran")

    async def receive():
        await asyncio.sleep(10)

    async def send(message):
        sent.append(message)

    limit = BodySizeLimit(app, max_bytes=1000, body_timeout=0.1)
    asyncio.run(limit({"type": "http", "headers": []}, receive, send))
    assert sent[0]["status"] == 408 and b"did not arrive" in sent[1]["body"]


def test_list_caps_are_400s_on_any_engine(client):
    stop = client.post("/v1/completions", json={"model": "fake-chat", "prompt": "a", "stop": ["x"] * 17})
    assert stop.status_code == 400 and stop.json()["error"]["param"] == "stop" and "16" in stop.text
    many = client.post("/v1/chat/completions", json={"model": "fake-chat", "messages": [{"role": "user"}] * 513})
    assert many.status_code == 400 and many.json()["error"]["param"] == "messages"
    ids = client.post("/v1/completions", json={"model": "fake-chat", "prompt": [1] * 500, "max_tokens": 1})
    assert ids.status_code != 400 or "prompts" not in ids.text  # one prompt of token ids is not a list of prompts


def test_a_tiny_temperature_samples_the_best_token():
    import numpy as np

    from wattlm.engines.batching.sampler import TokenSampler
    from wattlm.engines.params import SamplingParams

    logits = np.array([0.5, 3.0, -1.0], dtype=np.float32)
    with np.errstate(all="ignore"):
        assert TokenSampler(SamplingParams(temperature=1e-310, seed=1), []).sample(logits) == 1


# ---- pattern escapes -----------------------------------------------------------------------------


@pytest.mark.parametrize("pattern, translated", [
    (r"^\d{3}-\d{4}$", "^[0-9]{3}-[0-9]{4}$"),
    (r"\w+\.com", r"^([a-zA-Z0-9_]+[\x2E]com)$"),
    (r"^[\d_\-]+$", r"^[0-9_\x2D]+$"),
    (r"^\D\s$", r"^[^0-9][ \x09\x0A\x0B\x0C\x0D]$"),
    (r"^[]a]\u00e9\x41$", r"^[]a][\xE9][\x41]$"),
])
def test_pattern_escapes_become_classes(pattern, translated):
    from wattlm.engines.schema_patterns import translate_pattern

    assert translate_pattern(pattern) == translated


@pytest.mark.parametrize("pattern, reason", [(r"^\bx$", r"\\b"), (r"^(a)\1$", r"\\1"), (r"^[\D]$", "inside"),
                                             ("^a\\", "lone backslash"), ("^[ab$", "unclosed")])
def test_pattern_escapes_without_a_grammar_are_400(pattern, reason):
    from wattlm.engines.schema_patterns import UnsupportedPattern, translate_pattern

    with pytest.raises(UnsupportedPattern, match=reason):
        translate_pattern(pattern)


def test_translated_patterns_parse_in_llama_cpp():
    llama_cpp = pytest.importorskip("llama_cpp")
    for pattern in (r"^\d{3}-\d{4}$", r"^a\.b\\c\s\"$", r"^\S+@\w+$"):
        gbnf = grammar.json_grammar(JsonConstraint(schema=json.dumps({"type": "string", "pattern": pattern})))
        assert "\\d" not in gbnf
        llama_cpp.LlamaGrammar.from_string(gbnf, verbose=False)  # raises on a grammar llama.cpp rejects
