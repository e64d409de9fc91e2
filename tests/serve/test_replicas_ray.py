"""Ray Serve with 2 CPU replicas of SmolLM2 behind our app, through the official `openai` client.

One private Ray and one deployment for the module (the slow part: Ray's start and two model loads), and a
tiny model with a LoRA adapter deployed on the same Ray for the `--lora` test;
everything on loopback, every wait bounded. Killing a replica's process mid-load must cost exactly the
requests that replica was answering, each with a clean error; Serve then replaces it.
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from .test_lora import base_and_adapter  # noqa: F401 -- the fixture: a tiny Llama's GGUF and a random LoRA of it

pytestmark = pytest.mark.integration

MODEL = "smollm2"
PROMPT = "The history of electricity began"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One private Ray for the module, its CPUs shared by the two models deployed on it."""
    pytest.importorskip("ray.serve")
    pytest.importorskip("llama_cpp")
    from wattlm.serve.replicas.cluster import ReplicaCluster
    from wattlm.serve.replicas.options import ReplicaSettings

    settings = ReplicaSettings(replicas=2, stall_timeout=60.0, call_timeout=60.0, metrics_timeout=10.0)  # a loaded CI box
    with ReplicaCluster(settings, tmp_path_factory.mktemp("ray-logs") / "serve-ray.log", models=2) as started:
        yield started


@pytest.fixture(scope="module")
def replicated(cluster, smollm2_path):
    """(the ingress engine, the server's base URL): 2 replicas of the batch engine on the module's Ray."""
    from wattlm.engines.table import EngineSettings
    from wattlm.serve import create_app, running_server

    # 8 slots a replica: the 8 requests of the kill test all decode at once, wherever they land.
    engine = cluster.deploy(smollm2_path, MODEL, "batch", EngineSettings(n_ctx=512, max_seqs=8, max_waiting=8))
    with running_server(create_app({MODEL: engine})) as base_url:
        yield engine, base_url


def openai_client(base_url: str, retries: int = 0):
    from openai import OpenAI

    return OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=retries, timeout=120)


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


def complete(client, max_tokens: int = 16) -> str:
    reply = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=max_tokens, temperature=0)
    return reply.choices[0].text


def test_two_replicas_answer_chat_and_streams_through_the_openai_client(replicated):
    engine, base_url = replicated
    client = openai_client(base_url)
    messages = [{"role": "user", "content": "What is a transformer in a power grid?"}]
    reply = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=12, temperature=0)
    assert reply.choices[0].message.content.strip() and reply.usage.completion_tokens > 0
    stream = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=12, temperature=0, stream=True)
    pieces = [chunk.choices[0].delta.content for chunk in stream if chunk.choices and chunk.choices[0].delta.content]
    assert len(pieces) > 1  # token by token, not one block
    assert "".join(pieces) == reply.choices[0].message.content  # greedy: the same answer, whichever replica
    replicas = engine.replicas()
    assert len({row["pid"] for row in replicas}) == 2 and os.getpid() not in {row["pid"] for row in replicas}


def test_concurrent_requests_spread_over_both_replicas_with_the_same_answers(replicated):
    engine, base_url = replicated
    client = openai_client(base_url)
    before = engine.replica_counts()
    with ThreadPoolExecutor(6) as pool:
        texts = list(pool.map(lambda _: complete(client), range(6)))
    after = engine.replica_counts()
    assert len(set(texts)) == 1 and texts[0].strip()
    served = {replica: row["requests"] - before.get(replica, {}).get("requests", 0) for replica, row in after.items()}
    assert sum(served.values()) == 6
    assert len([count for count in served.values() if count > 0]) == 2, served  # both replicas took some


def scrape(base_url: str) -> dict[str, float]:
    """/metrics as {series: value}; the scrape is bounded by `metrics_timeout`, the client's timeout is a backstop."""
    import httpx

    response = httpx.get(f"{base_url}/metrics", timeout=60)
    assert response.status_code == 200
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in response.text.splitlines()
            if line and not line.startswith("#")}


def per_replica(series: dict[str, float], family: str) -> dict[str, float]:
    prefix = f'{family}{{model="{MODEL}",replica="'
    return {name[len(prefix):].split('"', 1)[0]: number for name, number in series.items() if name.startswith(prefix)}


def test_metrics_show_each_replicas_own_engine_figures(replicated):
    engine, base_url = replicated
    wait_for(lambda: len(engine.replicas()) == 2, 60, "the handle routing to both replicas")  # run alone (-k) too
    client = openai_client(base_url)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: complete(client, max_tokens=4), range(4)))
    series = scrape(base_url)
    replicas = engine.replicas()  # idle now: the same figures as the scrape's
    assert series[f'wattlm_replicas_answering{{model="{MODEL}"}}'] == 2
    assert series[f'wattlm_replicas_missing{{model="{MODEL}"}}'] == 0
    assert per_replica(series, "wattlm_replica_requests_total") == {row["replica"]: row["requests"] for row in replicas}
    assert per_replica(series, "wattlm_replica_generation_tokens_total") == {
        row["replica"]: row["counters"]["generated_tokens"] for row in replicas}
    assert set(per_replica(series, "wattlm_replica_requests_in_flight").values()) == {0}
    first_tokens = per_replica(series, "wattlm_replica_time_to_first_token_seconds_count")
    assert len(first_tokens) == 2 and sum(first_tokens.values()) >= 4
    assert series[f'wattlm_requests_total{{model="{MODEL}"}}'] >= 4  # the ingress's view of the model stays


def test_a_client_that_leaves_frees_its_slot_in_the_replica(replicated):
    import httpx

    engine, base_url = replicated

    def generated() -> int:
        return sum(row["counters"]["generated_tokens"] for row in engine.replicas())

    before = generated()
    body = {"model": MODEL, "prompt": PROMPT, "max_tokens": 400, "temperature": 0, "stream": True, "ignore_eos": True}
    with httpx.stream("POST", f"{base_url}/v1/completions", json=body, timeout=60) as response:
        lines = response.iter_lines()
        assert all(next(lines) is not None for _ in range(3))  # streaming has begun
    # Closed after a few tokens of 400: the cancellation reaches the replica, whose engine drops the sequence.
    wait_for(lambda: all(row.get("running", 0) == 0 and row.get("waiting", 0) == 0 for row in engine.replicas()),
             30, "the replicas' engines idle again")
    assert sum(row["in_flight"] for row in engine.replica_counts().values()) == 0
    assert generated() - before < 200  # stopped early, not decoded to the end nobody reads


def test_killing_a_replica_mid_load_costs_only_its_own_requests(replicated):
    import openai

    engine, base_url = replicated
    client = openai_client(base_url)
    clients = 8

    def ask(_: int) -> tuple[str, str | int]:
        try:
            stream = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=64, temperature=0, stream=True,
                                               stream_options={"include_usage": True}, extra_body={"ignore_eos": True})
            return "ok", [chunk.usage.completion_tokens for chunk in stream if chunk.usage][-1]
        except openai.APIError as error:
            return "error", str(error)

    before = engine.replica_counts()
    in_flight = lambda: sum(row["in_flight"] for row in engine.replica_counts().values())  # noqa: E731
    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(ask, index) for index in range(clients)]
        # Every answer has started (its 200 and first tokens sent): the victim's requests fail mid-stream.
        wait_for(lambda: in_flight() == clients and engine.running == clients, 60,
                 f"{clients} requests streaming from the replicas")
        at_kill = engine.replica_counts()
        victim = max(at_kill, key=lambda replica: at_kill[replica]["in_flight"])
        lost = at_kill[victim]["in_flight"]
        assert 0 < lost < clients, at_kill  # both replicas hold requests
        os.kill(at_kill[victim]["pid"], signal.SIGKILL)
        results = [future.result(timeout=120) for future in futures]
        # /metrics still answers: the survivor (idle again) in it, the dead replica not (missing until replaced).
        reported = per_replica(scrape(base_url), "wattlm_replica_requests_total")
        assert victim not in reported and set(at_kill) - {victim} <= set(reported), (victim, reported)

    errors = [message for status, message in results if status == "error"]
    answered = [tokens for status, tokens in results if status == "ok"]
    assert len(errors) == lost, results
    # Each as an SSE error event (the openai client raises APIError on it), not a truncated answer or a hang.
    assert all("stopped while answering" in message and "Error code" not in message for message in errors), errors
    assert answered == [64] * (clients - lost)  # every other request: its whole answer
    after = engine.replica_counts()
    assert after[victim]["failed"] - before.get(victim, {}).get("failed", 0) == lost
    assert all(row["failed"] == before.get(replica, {}).get("failed", 0)
               for replica, row in after.items() if replica != victim)

    # Serve replaces the dead replica; then both replicas answer again.
    dead_pid = at_kill[victim]["pid"]
    alive = wait_for(lambda: (rows := engine.replicas()) and len(rows) == 2 and dead_pid not in {r["pid"] for r in rows}
                     and rows, 120, "a replacement replica")
    retrying = openai_client(base_url, retries=2)
    seen_before = engine.replica_counts()

    def answered_by_both():
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: complete(retrying, max_tokens=4), range(4)))
        counts = engine.replica_counts()
        return all(counts.get(row["replica"], {}).get("requests", 0) > seen_before.get(row["replica"], {}).get("requests", 0)
                   for row in alive)

    wait_for(answered_by_both, 120, "both replicas answering after the replacement")


def test_a_lora_adapter_is_served_by_each_replica_beside_its_base(cluster, request):
    """`--lora` with `--replicas`: the adapter answers as its own model, like the engine without Ray."""
    from wattlm.engines.batching.engine import LlamaCppBatchEngine
    from wattlm.engines.params import SamplingParams
    from wattlm.engines.table import EngineSettings
    from wattlm.serve import create_app, running_server

    base_path, adapter = request.getfixturevalue("base_and_adapter")
    # One sequence at a time, as the local engines below: a random model's logits are flat enough that a
    # batch's different arithmetic could flip a greedy token.
    base = cluster.deploy(base_path, "tiny", "batch", EngineSettings(n_ctx=256, max_seqs=1, max_waiting=4),
                          adapters={"tiny-lora": adapter})
    lora = base.adapter("tiny-lora")
    # The handle's router learns the replicas apart from `serve.run` returning: both known before comparing.
    wait_for(lambda: len(lora.replicas()) == 2, 60, "the handle routing to both tiny replicas")
    greedy = SamplingParams(max_tokens=8, temperature=0, ignore_eos=True)
    local_base = LlamaCppBatchEngine(base_path, n_ctx=256, n_threads=1, name="tiny", max_seqs=1)
    local_lora = LlamaCppBatchEngine(base_path, n_ctx=256, n_threads=1, name="tiny-lora", max_seqs=1, lora_path=adapter,
                                     share_weights_with=local_base)
    try:
        expected = {name: "".join(chunk.text for chunk in engine.generate(PROMPT, greedy))
                    for name, engine in (("tiny", local_base), ("tiny-lora", local_lora))}
    finally:
        local_lora.close()
        local_base.close()
    assert expected["tiny"] != expected["tiny-lora"]  # the adapter changes the answer
    with running_server(create_app({"tiny": base, "tiny-lora": lora})) as base_url:
        client = openai_client(base_url)
        with ThreadPoolExecutor(4) as pool:  # enough requests that both replicas take some
            answers = list(pool.map(lambda name: client.completions.create(
                model=name, prompt=PROMPT, max_tokens=8, temperature=0, extra_body={"ignore_eos": True}).choices[0].text,
                ["tiny-lora", "tiny", "tiny-lora", "tiny-lora"]))
        assert answers == [expected["tiny-lora"], expected["tiny"], expected["tiny-lora"], expected["tiny-lora"]]
        series = scrape(base_url)
    adapter_requests = {row["replica"]: row["requests"] for row in lora.replicas()}
    assert len(adapter_requests) == 2 and sum(adapter_requests.values()) == 3  # each replica holds the adapter
    reported = {name.split('replica="')[1].split('"')[0]: number for name, number in series.items()
                if name.startswith('wattlm_replica_requests_total{model="tiny-lora",')}
    assert reported == adapter_requests
