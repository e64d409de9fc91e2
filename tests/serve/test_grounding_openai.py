"""Grounded answers through the official `openai` client against a real `watt serve` subprocess.

SmolLM2-135M is English and tiny: this asserts the citation structure and the refusals, not the answers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOCS = ["relay_protection_testing_en.txt", "cable_joint_installation_en.md", "battery_storage_station_safety.txt"]
WATT = [sys.executable, "-m", "wattlm.cli"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def grounded_server(tmp_path_factory, smollm2_path):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("openai")
    home = tmp_path_factory.mktemp("grounded-serve")
    env = {**os.environ, "WATT_HOME": str(home)}
    # Paths as given (relative to the repository): citations must name them exactly so.
    docs = [f"examples/power-grid/kb-holdout/docs/{name}" for name in DOCS]
    for args in (["models", "add", "smollm2-135m"], ["kb", "build", *docs, "--name", "holdout"]):
        done = subprocess.run(WATT + args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
    port = free_port()
    server = subprocess.Popen(WATT + ["serve", "--model", "smollm2-135m", "--kb", "holdout", "--port", str(port),
                                      "--n-ctx", "4096", "--threads", "2"],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stdout.read()
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("watt serve did not start within 180 s")
        yield base, set(docs)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def test_grounded_answers_through_the_openai_client(grounded_server):
    import openai

    base, sources = grounded_server
    client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
    ask = dict(model="smollm2-135m", max_tokens=24, temperature=0)
    question = [{"role": "user", "content": "How fast must zone 1 of a distance relay trip during the routine test?"}]

    message = client.chat.completions.create(messages=question, **ask).choices[0].message
    refused = message.content == "The documents do not contain this."
    assert refused or message.citations, message  # an answer with citations, or the refusal: never a bare answer
    for number, cited in enumerate(message.citations, start=1):
        assert cited["id"] == number and f"[{number}]" in message.content
        assert cited["source"] in sources and cited["text"] and cited["end"] > cited["start"]
        assert {"title", "heading", "score", "superseded"} <= set(cited)

    out_of_scope = client.chat.completions.create(
        messages=[{"role": "user", "content": "How do I bake sourdough bread at home?"}], **ask).choices[0].message
    assert (out_of_scope.content, out_of_scope.citations) == ("The documents do not contain this.", [])

    one = client.chat.completions.create(messages=question, extra_body={"knowledge": {"kb": "holdout", "k": 1}},
                                         **ask).choices[0].message
    assert len(one.citations) <= 1

    plain = client.chat.completions.create(messages=question, extra_body={"knowledge": False}, **ask)
    assert plain.choices[0].message.content and "citations" not in (plain.choices[0].message.model_extra or {})

    stream = list(client.chat.completions.create(messages=question, stream=True, **ask))
    final = [chunk for chunk in stream if chunk.choices][-1].choices[0]
    assert final.finish_reason in ("stop", "length")
    assert all(cited["source"] in sources for cited in final.delta.citations)

    with pytest.raises(openai.NotFoundError, match="no-such-kb"):
        client.chat.completions.create(messages=question, extra_body={"knowledge": {"kb": "no-such-kb"}}, **ask)

    hits = httpx.post(f"{base}/v1/kb/holdout/search", json={"query": question[0]["content"], "k": 2}).json()["data"]
    assert hits[0]["source"].endswith("relay_protection_testing_en.txt") and hits[0]["supported"]
