"""`--engine vllm`: the bridge from our blocking `Engine` contract to vLLM's asyncio engine.

vLLM cannot run here (no GPU, and its wheels pull CUDA torch), so these tests drive `VllmEngine`
against a scripted fake `vllm` module (tests/engines/vllm_fake.py). They prove the bridge (parameter
mapping, streaming deltas and counts, finish reasons, abort on close and on disconnect, overload, LoRA
routing, errors, the OpenAI routes over it), not vLLM: bench/gpu_check.sh runs the real engine on a GPU.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from fastapi.testclient import TestClient

from tests.engines import vllm_fake
from wattlm.engines import cancel, vllm_engine
from wattlm.engines.base import (
    ChatTemplates,
    EngineOverloaded,
    InvalidTokens,
    JsonOutput,
    Metered,
    PromptTooLong,
    Scoring,
    Vocabulary,
    capabilities_of,
)
from wattlm.engines.params import ChatTurn, JsonConstraint, SamplingParams
from wattlm.engines.table import build_engine
from wattlm.engines.vllm_engine import VllmEngine
from wattlm.errors import WattError

NEED = "--engine vllm needs the vllm package and a CUDA GPU"


@pytest.fixture
def model_dir(tmp_path):
    folder = tmp_path / "grid-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"max_position_embeddings": 64}))
    return folder


@pytest.fixture
def fake_vllm(monkeypatch):
    module = vllm_fake.install(monkeypatch)
    monkeypatch.setattr(vllm_engine, "cuda_devices", lambda: 1)  # a GPU, as far as the engine can tell
    return module


@pytest.fixture
def engine(fake_vllm, model_dir):
    built = VllmEngine(model_dir, name="grid", n_ctx=2048, max_seqs=2, max_waiting=1)
    yield built
    built.close()


def fake_engine() -> vllm_fake.AsyncLLMEngine:
    return vllm_fake.AsyncLLMEngine.last


def wait_until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


# ---- refused without vLLM or a GPU ----------------------------------------------------------------


def test_without_the_vllm_package_it_refuses_in_one_line_before_loading(monkeypatch, model_dir):
    monkeypatch.setitem(__import__("sys").modules, "vllm", None)  # `import vllm` raises ImportError
    with pytest.raises(WattError) as refused:
        build_engine(model_dir, "grid", "vllm")
    message = str(refused.value)
    assert message.startswith(NEED) and "\n" not in message


def test_without_a_gpu_it_refuses_in_one_line(monkeypatch, model_dir):
    vllm_fake.install(monkeypatch)
    monkeypatch.setattr(vllm_engine, "cuda_devices", lambda: 0)
    with pytest.raises(WattError, match=f"^{NEED}: torch sees no CUDA device") as refused:
        VllmEngine(model_dir)
    assert "\n" not in str(refused.value) and vllm_fake.AsyncLLMEngine.last is None  # nothing was built


def test_this_machine_refuses(model_dir):
    """The real check, no fakes: this CPU machine has no vllm (and no GPU)."""
    with pytest.raises(WattError, match=f"^{NEED}"):
        VllmEngine(model_dir)


# ---- building vLLM's engine -------------------------------------------------------------------------


def test_engine_args_and_capabilities(engine, model_dir):
    vllm = fake_engine()
    assert vllm.started_on_loop  # built on the bridge's loop, where its output handler will run
    assert vllm.args == {"model": str(model_dir), "max_model_len": 64, "max_num_seqs": 2,
                         "enable_prefix_caching": True, "enable_lora": False, "gpu_memory_utilization": 0.9}
    assert engine.context_length == 64  # capped by the model's trained context, not our 2048
    assert set(capabilities_of(engine)) == {"Scoring", "ChatTemplates", "Vocabulary", "JsonOutput", "Metered"}
    assert all(isinstance(engine, cap) for cap in (Scoring, ChatTemplates, Vocabulary, JsonOutput, Metered))


def test_a_folder_without_config_is_not_found(fake_vllm, tmp_path):
    with pytest.raises(WattError, match="no Hugging Face model"):
        VllmEngine(tmp_path)


# ---- generation -------------------------------------------------------------------------------------


def test_sampling_parameters_map_onto_vllms(engine):
    params = SamplingParams(max_tokens=3, temperature=0.7, top_p=0.9, top_k=40, seed=7, stop=("noon",),
                            presence_penalty=0.5, frequency_penalty=0.25, repetition_penalty=1.1, ignore_eos=True)
    list(engine.generate("the load", params))
    request = fake_engine().requests[-1]
    assert request.prompt == {"prompt_token_ids": [0, 2, 6]}  # our tokens, checked by us
    assert request.sampling.kwargs == {
        "n": 1, "max_tokens": 3, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "seed": 7, "stop": ["noon"],
        "presence_penalty": 0.5, "frequency_penalty": 0.25, "repetition_penalty": 1.1, "ignore_eos": True,
        "skip_special_tokens": True,
    }
    assert request.lora is None
    list(engine.generate("the load", SamplingParams()))
    defaults = fake_engine().requests[-1].sampling.kwargs
    assert defaults["top_k"] == -1 and defaults["seed"] is None and defaults["stop"] == []
    assert defaults["max_tokens"] == 64 - 3  # no max_tokens: the room left in the context


def test_streams_deltas_with_cumulative_counts_and_one_finish_reason(engine):
    chunks = list(engine.generate("the grid", SamplingParams()))
    assert "".join(chunk.text for chunk in chunks) == "the grid is stable"
    assert [chunk.finish_reason for chunk in chunks] == [None] * (len(chunks) - 1) + ["stop"]
    assert [chunk.completion_tokens for chunk in chunks] == [1, 2, 3, 4, 4]  # the end token is not counted
    assert {chunk.prompt_tokens for chunk in chunks} == {3}
    assert engine.counters == {"prompt_tokens": 3, "reused_prompt_tokens": 0, "generated_tokens": 4}
    assert engine.metrics.requests == 1 and engine.metrics.in_flight == 0
    assert sum(engine.metrics.ttft.counts) == 1 and sum(engine.metrics.itl.counts) == 4


def test_max_tokens_and_stop_strings_finish_as_vllm_says(engine):
    cut = list(engine.generate("the", SamplingParams(max_tokens=2)))
    assert "".join(c.text for c in cut) == "the grid" and cut[-1].finish_reason == "length"
    assert cut[-1].completion_tokens == 2
    stopped = list(engine.generate("the", SamplingParams(stop=("stable",))))
    assert "".join(c.text for c in stopped) == "the grid is" and stopped[-1].finish_reason == "stop"
    assert stopped[-1].completion_tokens == 4  # a stop string's tokens were generated: they count


def test_prefix_cache_hits_are_counted(engine):
    fake_engine().cached_tokens = 2
    list(engine.generate("the grid", SamplingParams()))
    assert engine.counters["reused_prompt_tokens"] == 2


def test_prompt_errors_come_on_the_first_next_before_vllm_sees_anything(engine):
    too_long = engine.generate("the " * 64, SamplingParams())  # nothing happens until next()
    with pytest.raises(PromptTooLong):
        next(too_long)
    with pytest.raises(WattError, match="empty"):
        next(engine.generate([], SamplingParams()))
    with pytest.raises(InvalidTokens):
        next(engine.generate([2, 99], SamplingParams()))
    assert fake_engine().requests == []


def test_vllm_failures_and_aborts_are_clean_errors(engine):
    fake_engine().script = "the FAIL"
    with pytest.raises(WattError, match="vLLM refused or failed the request: RuntimeError: CUDA error"):
        list(engine.generate("the", SamplingParams()))
    fake_engine().script, fake_engine().finish_with = "the grid", "abort"
    with pytest.raises(WattError, match="finish reason 'abort'"):
        list(engine.generate("the", SamplingParams()))
    assert engine.running == 0 and engine.waiting == 0  # both freed their place


def test_closing_early_aborts_the_request_in_vllm(engine):
    fake_engine().hold.clear()  # the first token comes, the rest wait
    stream = engine.generate("the", SamplingParams())
    assert next(stream).text == "the"
    assert engine.running == 1
    stream.close()
    request_id = fake_engine().requests[-1].request_id
    assert fake_engine().aborted == [request_id]
    assert engine.running == 0 and engine.metrics.in_flight == 0


def test_a_finished_request_is_not_aborted(engine):
    list(engine.generate("the", SamplingParams()))
    assert fake_engine().aborted == []


def test_a_client_gone_while_waiting_aborts_the_request(engine):
    fake_engine().hold.clear()
    flag, errors = cancel.CancelFlag(), []

    def client():
        with cancel.cancel_scope(flag):
            stream = engine.generate("the", SamplingParams())
            try:
                for _ in stream:
                    pass
            except cancel.Cancelled as error:
                errors.append(error)
            finally:
                stream.close()

    thread = threading.Thread(target=client)
    thread.start()
    wait_until(lambda: engine.running == 1 and fake_engine().requests)
    time.sleep(0.05)  # the request thread now waits for vLLM's second output
    flag.set()
    thread.join(timeout=5)
    assert not thread.is_alive() and len(errors) == 1
    assert fake_engine().aborted == [fake_engine().requests[-1].request_id] and engine.running == 0


def test_overloaded_beyond_max_seqs_plus_max_waiting(engine):
    fake_engine().hold.clear()
    streams = [engine.generate("the", SamplingParams()) for _ in range(3)]
    next(streams[0]), next(streams[1]), next(streams[2])  # max_seqs 2 + max_waiting 1
    assert (engine.running, engine.waiting) == (2, 1)
    with pytest.raises(EngineOverloaded, match="3 requests in flight"):
        next(engine.generate("the", SamplingParams()))
    streams[0].close()
    fake_engine().hold.set()
    assert list(engine.generate("the", SamplingParams()))[-1].finish_reason == "stop"
    for stream in streams[1:]:
        assert "".join(chunk.text for chunk in stream) == " grid is stable"


# ---- LoRA -------------------------------------------------------------------------------------------


def test_lora_adapters_route_requests_with_a_lora_request(fake_vllm, model_dir, tmp_path):
    adapter_dir = tmp_path / "qa-adapter"
    adapter_dir.mkdir()
    (adapter_dir / "adapter_config.json").write_text("{}")
    base = VllmEngine(model_dir, name="grid", max_loras=2, max_lora_rank=16)
    assert fake_engine().args["enable_lora"] and fake_engine().args["max_loras"] == 2
    assert fake_engine().args["max_lora_rank"] == 16
    qa = base.adapter("grid-qa", adapter_dir)
    other = base.adapter("grid-other", adapter_dir)
    assert qa.name == "grid-qa" and qa.context_length == base.context_length
    list(qa.generate("the", SamplingParams()))
    list(base.generate("the", SamplingParams()))
    list(other.generate("the", SamplingParams()))
    loras = [request.lora for request in fake_engine().requests]
    assert loras[0] == vllm_fake.LoRARequest("grid-qa", 1, str(adapter_dir.resolve()))
    assert loras[1] is None and loras[2].lora_int_id == 2  # each adapter its own id
    with pytest.raises(WattError, match="no PEFT adapter"):
        base.adapter("bad", tmp_path)
    qa.close(), other.close()
    assert fake_engine().shutdowns == 0  # the base still serves
    base.close()
    assert fake_engine().shutdowns == 1


def test_adapters_need_an_engine_loaded_with_lora(engine, tmp_path):
    with pytest.raises(WattError, match="without LoRA support"):
        engine.adapter("qa", tmp_path)


# ---- capabilities -----------------------------------------------------------------------------------


def test_chat_template_and_vocabulary_come_from_vllms_tokenizer(engine):
    assert engine.has_chat_template
    assert engine.render_chat([ChatTurn("user", "hello")]) == "user: hello assistant:"
    with pytest.raises(WattError, match="chat template of 'grid' rejected"):
        engine.render_chat([ChatTurn("tool", "x")])
    assert engine.tokenize("the grid") == [0, 2, 3] and engine.tokenize("the grid", add_special=False) == [2, 3]
    assert engine.detokenize([2, 3]) == "the grid"
    with pytest.raises(InvalidTokens):
        engine.detokenize([999])
    info = engine.tokenizer_info()
    assert (info.vocab_size, info.bos_token_id, info.eos_token, info.add_bos_token) == (13, 0, "</s>", True)


def test_json_output_goes_to_vllms_structured_outputs(engine):
    schema = json.dumps({"type": "object"})
    engine.check_json(JsonConstraint(schema))
    with pytest.raises(WattError, match="not valid JSON"):
        engine.check_json(JsonConstraint("{nope"))
    list(engine.generate("the", SamplingParams(response_json=JsonConstraint(schema))))
    assert fake_engine().requests[-1].sampling.kwargs["structured_outputs"] == vllm_fake.StructuredOutputsParams(json=schema)
    list(engine.generate("the", SamplingParams(response_json=JsonConstraint())))
    assert fake_engine().requests[-1].sampling.kwargs["structured_outputs"].json_object is True


def test_echo_scoring_uses_prompt_logprobs(engine):
    scored = engine.generate_with_logprobs("the grid is", SamplingParams(max_tokens=0), top_logprobs=1, echo=True)
    sent = fake_engine().requests[-1].sampling.kwargs
    assert sent["prompt_logprobs"] == 1 and sent["logprobs"] == 1 and sent["max_tokens"] == 1  # vLLM makes >= 1
    assert scored.tokens == ["<s>", "the", "grid", "is"] and scored.text == "the grid is"
    assert scored.token_logprobs == [None, pytest.approx(-0.1), pytest.approx(-0.2), pytest.approx(-0.3)]
    assert scored.top_logprobs[1] == {"the": pytest.approx(-0.1), "hello": -3.0}
    assert (scored.completion_tokens, scored.finish_reason, scored.prompt_tokens) == (0, "length", 4)
    assert scored.text_offset == [0, 3, 6, 10]


def test_logprobs_of_generated_tokens(engine):
    scored = engine.generate_with_logprobs("the", SamplingParams(max_tokens=2), top_logprobs=0, echo=False)
    assert scored.text == "the grid" and scored.tokens == ["the", "grid"] and scored.completion_tokens == 2
    assert scored.token_logprobs == [pytest.approx(-0.1), pytest.approx(-0.2)]
    assert scored.finish_reason == "length" and "prompt_logprobs" not in fake_engine().requests[-1].sampling.kwargs
    ended = engine.generate_with_logprobs("the", SamplingParams(), top_logprobs=0, echo=False)
    assert ended.finish_reason == "stop" and ended.completion_tokens == 4 and len(ended.tokens) == 4  # no </s>


# ---- behind the OpenAI routes -----------------------------------------------------------------------


def test_the_openai_routes_serve_it(engine):
    from wattlm.serve import create_app

    with TestClient(create_app({"grid": engine})) as client:
        body = client.post("/v1/completions", json={"model": "grid", "prompt": "the", "max_tokens": 3}).json()
        assert body["choices"][0]["text"] == "the grid is" and body["choices"][0]["finish_reason"] == "length"
        assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
        with client.stream("POST", "/v1/completions", json={"model": "grid", "prompt": "the", "stream": True}) as stream:
            events = [line.removeprefix("data: ") for line in stream.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        assert "".join(json.loads(e)["choices"][0]["text"] for e in events[:-1]) == "the grid is stable"
        chat = client.post("/v1/chat/completions", json={"model": "grid", "messages": [
            {"role": "user", "content": "hello"}]}).json()
        assert chat["choices"][0]["message"]["content"] == "the grid is stable"
        assert fake_engine().requests[-1].prompt["prompt_token_ids"] == engine.tokenize("user: hello assistant:")
        echoed = client.post("/v1/completions", json={"model": "grid", "prompt": "the grid", "max_tokens": 0,
                                                      "echo": True, "logprobs": 1}).json()
        assert echoed["choices"][0]["logprobs"]["tokens"] == ["<s>", "the", "grid"]
        assert client.post("/v1/embeddings", json={"model": "grid", "input": "x"}).status_code == 400
        metrics = client.get("/metrics").text
        assert 'wattlm_generation_tokens_total{model="grid"}' in metrics


def test_watt_serve_engine_vllm_refuses_here_in_one_line(tmp_path, model_dir):
    """`watt serve --engine vllm` on this machine: the one-line refusal, before the server starts."""
    import typer
    from typer.testing import CliRunner

    from wattlm.models.store import add_model
    from wattlm.registry import Registry
    from wattlm.serve.cli import serve_command

    registry = Registry(tmp_path / "ws")
    add_model(registry, str(model_dir), name="grid")
    registry.close()
    cli = typer.Typer()
    cli.command()(serve_command)
    result = CliRunner().invoke(cli, ["--engine", "vllm", "--model", "grid", "--home", str(tmp_path / "ws")])
    assert result.exit_code != 0 and isinstance(result.exception, WattError)
    assert str(result.exception).startswith(NEED) and "\n" not in str(result.exception)


def test_closing_the_engine_ends_requests_in_flight_with_an_error(fake_vllm, model_dir):
    engine = VllmEngine(model_dir, name="grid")
    fake_engine().hold.clear()
    stream = engine.generate("the", SamplingParams())
    assert next(stream).text == "the"
    engine.close()
    with pytest.raises(WattError, match="the engine was shut down"):
        next(stream)
    assert fake_engine().shutdowns == 1 and engine.running == 0


def test_serve_lora_builds_the_base_with_lora_slots_and_serves_each_adapter(fake_vllm, model_dir, tmp_path,
                                                                           monkeypatch):
    """`watt serve --engine vllm --model M --lora NAME=FOLDER`: the base gets one LoRA slot per adapter,
    and each adapter is a served model whose requests carry its LoRARequest."""
    from wattlm.serve import launch as launch_module
    from wattlm.serve import server

    adapters = {}
    for name in ("grid-qa", "grid-faq"):
        adapters[name] = tmp_path / name
        adapters[name].mkdir()
        (adapters[name] / "adapter_config.json").write_text("{}")

    class Art:
        name, id, tier, created, parents = "grid", "mo-1", "industry", 0.0, []

    monkeypatch.setattr(launch_module, "model_source", lambda registry, ref, loads: (Art(), model_dir))
    apps = []
    monkeypatch.setattr(server, "serve", lambda app, host, port: apps.append(app))
    launch_module.launch(launch_module.Registry(tmp_path / "home"), ["grid"], engine="vllm", loras=adapters)
    assert fake_engine().args["enable_lora"] and fake_engine().args["max_loras"] == 2
    client = TestClient(apps[0])
    assert {m["id"] for m in client.get("/v1/models").json()["data"]} >= {"grid", "grid-qa", "grid-faq"}
    answer = client.post("/v1/completions", json={"model": "grid-faq", "prompt": "the", "max_tokens": 3})
    assert answer.status_code == 200, answer.text
    assert fake_engine().requests[-1].lora.lora_name == "grid-faq"
