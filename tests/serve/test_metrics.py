"""/metrics in Prometheus text format, and overload as 503 + Retry-After."""

from collections.abc import Iterator

from fastapi.testclient import TestClient

from wattlm.engines.base import EngineOverloaded
from wattlm.engines.metrics import EngineMetrics
from wattlm.engines.params import GenerationChunk, SamplingParams
from wattlm.serve import create_app
from wattlm.serve.metrics import render

from .fakes import FakeEngine


class MeteredEngine(FakeEngine):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.metrics = EngineMetrics()
        self.running, self.waiting = 2, 3
        self.counters = {"prompt_tokens": 10, "generated_tokens": 7, "steps": 4, "reused_prompt_tokens": 0}


class FullEngine(FakeEngine):
    def generate(self, prompt: str, params: SamplingParams) -> Iterator[GenerationChunk]:
        raise EngineOverloaded("server busy: 1 requests running and 1 waiting; retry later", retry_after=2)
        yield  # a generator, like every engine: the error comes on the first next()


def test_render_counts_and_histograms():
    engine = MeteredEngine(name="m")
    engine.metrics.started()
    engine.metrics.token(0.3, first=True)
    engine.metrics.token(0.02, first=False)
    text = render({"m": engine, "plain": FakeEngine()})
    assert 'wattlm_requests_total{model="m"} 1' in text
    assert 'wattlm_queue_depth{model="m"} 3' in text and 'wattlm_requests_running{model="m"} 2' in text
    assert 'wattlm_generation_tokens_total{model="m"} 7' in text
    assert 'wattlm_time_to_first_token_seconds_bucket{model="m",le="0.25"} 0' in text
    assert 'wattlm_time_to_first_token_seconds_bucket{model="m",le="0.5"} 1' in text
    assert 'wattlm_inter_token_latency_seconds_count{model="m"} 1' in text
    assert "plain" not in text  # engines without metrics are not reported
    assert "# TYPE wattlm_time_to_first_token_seconds histogram" in text


def test_metrics_endpoint():
    with TestClient(create_app({"m": MeteredEngine(name="m")})) as client:
        response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert 'wattlm_requests_running{model="m"} 2' in response.text


def test_overload_is_503_with_retry_after_streaming_or_not():
    with TestClient(create_app({"full": FullEngine(name="full")})) as client:
        for stream in (False, True):
            response = client.post("/v1/completions", json={"model": "full", "prompt": "x", "stream": stream})
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "2"
            assert response.json()["error"]["code"] == "server_overloaded"


def test_extension_fields_reach_the_engine():
    from wattlm.serve.protocol.completions import CompletionRequest
    from wattlm.serve.serving import sampling_params

    request = CompletionRequest(model="m", prompt="x", top_k=-1, repetition_penalty=1.2, ignore_eos=True)
    params = sampling_params(request, 8)
    assert (params.top_k, params.repetition_penalty, params.ignore_eos) == (0, 1.2, True)
