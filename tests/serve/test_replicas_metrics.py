"""Per-replica series of /metrics with `--replicas`: each replica's own engine figures, asked of every
replica at each scrape, and the replicas that did not answer in time counted, not waited for. No Ray
here: a fake Serve handle (tests/serve/test_replicas_ray.py scrapes two real replicas)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from wattlm.serve import create_app
from wattlm.serve.metrics import render
from wattlm.serve.replicas.client import replicated_engine
from wattlm.serve.replicas.deployment import EngineReplica
from wattlm.serve.replicas.options import ReplicaSettings

from .test_metrics import MeteredEngine


def replica_over(engine, replica: str) -> EngineReplica:
    """The deployment class around `engine`, as Serve would build it, minus Ray and the model load."""
    deployment = EngineReplica.__new__(EngineReplica)
    deployment.engine, deployment.identity = engine, {"replica": replica, "pid": 1, "host": "h"}
    return deployment


def busy_engine(requests: int, ttft: float) -> MeteredEngine:
    engine = MeteredEngine(name="m")
    for _ in range(requests):
        engine.metrics.started()
        engine.metrics.token(ttft, first=True)
        engine.metrics.token(0.02, first=False)
    engine.metrics.ended()  # one of them still in flight
    return engine


class BroadcastHandle:
    """A Serve handle whose `broadcast(method)` answers with `results` (exceptions as Serve collects them)."""

    def __init__(self, results=None, error: BaseException | None = None) -> None:
        self.results_, self.error, self.asked = results or [], error, []

    def options(self, **_):
        return self

    def broadcast(self, method: str):
        handle = self

        class Response:
            def results(self, timeout_s=None, return_exceptions=False):
                handle.asked.append((method, timeout_s, return_exceptions))
                if handle.error is not None:
                    raise handle.error
                return handle.results_

        return Response()


def ingress_over(handle, replicas: int = 2):
    settings = ReplicaSettings(replicas=replicas, metrics_timeout=0.5)
    return replicated_engine(handle, "m", {"context_length": 64, "capabilities": ["Metered"]}, settings)


def value(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert match, f"{series} not in:\n{text}"
    return float(match.group(1))


def test_a_replicas_series_are_its_engines_series_with_a_replica_label():
    engine = busy_engine(requests=3, ttft=0.3)
    figures = replica_over(engine, "A").figures()
    assert figures["in_flight"] == 2 and figures["ttft"]["counts"] == engine.metrics.ttft.counts
    text = render({"m": ingress_over(BroadcastHandle([figures]), replicas=1)})
    local = render({"m": engine})
    # Every series of the engine itself comes back under wattlm_replica_*, labelled with the replica too.
    series = [line for line in local.splitlines() if line.startswith("wattlm_")]
    assert len(series) > 30
    for line in series:
        assert re.sub(r'^wattlm_(\w+)\{model="m"', r'wattlm_replica_\1{model="m",replica="A"', line) in text, line
    assert value(text, 'wattlm_replicas_answering{model="m"}') == 1
    assert value(text, 'wattlm_replicas_missing{model="m"}') == 0


def test_each_replica_is_a_series_and_one_that_does_not_answer_is_counted_not_waited_for():
    answered = [replica_over(busy_engine(2, 0.3), "A").figures(), replica_over(busy_engine(5, 3.0), "B").figures()]
    handle = BroadcastHandle([answered[0], TimeoutError("late"), answered[1]])
    text = render({"m": ingress_over(handle, replicas=3)})
    assert handle.asked == [("figures", 0.5, True)]  # one broadcast, bounded by metrics_timeout, errors collected
    assert value(text, 'wattlm_replica_requests_total{model="m",replica="A"}') == 2
    assert value(text, 'wattlm_replica_requests_in_flight{model="m",replica="B"}') == 4
    assert value(text, 'wattlm_replica_queue_depth{model="m",replica="B"}') == 3
    assert value(text, 'wattlm_replica_generation_tokens_total{model="m",replica="A"}') == 7
    assert value(text, 'wattlm_replica_time_to_first_token_seconds_bucket{model="m",replica="A",le="0.5"}') == 2
    assert value(text, 'wattlm_replica_time_to_first_token_seconds_bucket{model="m",replica="B",le="2.5"}') == 0
    assert value(text, 'wattlm_replica_time_to_first_token_seconds_count{model="m",replica="B"}') == 5
    assert value(text, 'wattlm_replicas_answering{model="m"}') == 2
    assert value(text, 'wattlm_replicas_missing{model="m"}') == 1
    assert value(text, 'wattlm_requests_running{model="m"}') == 0  # the ingress's own view of the model stays
    assert text.count("# TYPE wattlm_replica_time_to_first_token_seconds histogram") == 1


def test_no_replica_reachable_still_renders_with_all_of_them_missing():
    from ray.serve.exceptions import DeploymentUnavailableError  # what Serve raises with no replica running

    handle = BroadcastHandle(error=DeploymentUnavailableError(None))
    text = render({"m": ingress_over(handle)})
    assert value(text, 'wattlm_replicas_missing{model="m"}') == 2 and 'replica="' not in text


def test_the_metrics_route_asks_the_replicas_off_the_event_loop():
    import asyncio

    loops = []

    class LoopCheckingHandle(BroadcastHandle):
        def broadcast(self, method: str):
            try:
                loops.append(asyncio.get_running_loop())
            except RuntimeError:
                loops.append(None)  # a worker thread: Ray's blocking `results()` is allowed there
            return super().broadcast(method)

    figures = replica_over(busy_engine(1, 0.1), "A").figures()
    with TestClient(create_app({"m": ingress_over(LoopCheckingHandle([figures])), "local": MeteredEngine(name="local")})) as client:
        response = client.get("/metrics")
    assert response.status_code == 200 and loops == [None]
    assert value(response.text, 'wattlm_replica_requests_total{model="m",replica="A"}') == 1
    assert value(response.text, 'wattlm_requests_running{model="local"}') == 2
    assert 'replica="' not in "\n".join(line for line in response.text.splitlines() if 'model="local"' in line)
