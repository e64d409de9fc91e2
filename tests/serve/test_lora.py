"""A LoRA adapter served as its own model over shared base weights (one llama.cpp context per adapter).

The adapter is a random PEFT LoRA on the tiny Llama (B initialised non-zero, so it changes the
output), converted with llama.cpp's `convert_lora_to_gguf.py`.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("peft")

from wattlm.engines.params import SamplingParams  # noqa: E402
from wattlm.errors import WattError  # noqa: E402

GREEDY = SamplingParams(max_tokens=12, temperature=0, ignore_eos=True)
PROMPT = "The grid operator said"


@pytest.fixture(scope="module")
def base_and_adapter(tiny_model_dir, tmp_path_factory):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from wattlm.export.converter import converter_dir
    from wattlm.export.gguf import convert_f16

    script = converter_dir() / "convert_lora_to_gguf.py"
    if not script.exists():
        pytest.skip("llama.cpp's convert_lora_to_gguf.py is not set up (python -m wattlm.export.converter)")
    out = tmp_path_factory.mktemp("lora")
    base = convert_f16(tiny_model_dir, out / "base-f16.gguf", out / "convert.log")
    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    config = LoraConfig(r=8, lora_alpha=32, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"],
                        init_lora_weights=False)  # random A and B: an adapter that changes answers
    get_peft_model(model, config).save_pretrained(out / "peft")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(script.parent), str(script.parent / "gguf-py")])}
    subprocess.run([sys.executable, str(script), "--base", str(tiny_model_dir), "--outtype", "f16", "--outfile",
                    str(out / "adapter.gguf"), str(out / "peft")], check=True, env=env, capture_output=True)
    return base, out / "adapter.gguf"


def answer(engine, prompt: str = PROMPT) -> str:
    text = "".join(chunk.text for chunk in engine.generate(prompt, GREEDY))
    return text


def test_adapter_engine_answers_like_llama_cpp_with_the_adapter(base_and_adapter):
    from llama_cpp import Llama

    from wattlm.engines.batching.engine import LlamaCppBatchEngine

    base_path, adapter = base_and_adapter
    base = LlamaCppBatchEngine(base_path, n_ctx=128, n_threads=2, max_seqs=2, name="base")
    tuned = LlamaCppBatchEngine(base_path, n_ctx=128, n_threads=2, max_seqs=2, name="task", lora_path=adapter,
                                share_weights_with=base)
    try:
        plain, adapted = answer(base), answer(tuned)
        assert plain != adapted  # the adapter is applied
        reference = Llama(model_path=str(base_path), lora_path=str(adapter), n_ctx=128, n_threads=2, verbose=False)
        tokens = base.tokenize(PROMPT)
        expected = []
        for token in reference.generate(tokens, temp=0.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0):
            expected.append(token)
            if len(expected) == GREEDY.max_tokens:
                break
        reference.close()
        assert adapted == base.detokenize(expected)
        base.close()  # the weights stay alive for the adapter engine that shares them
        assert answer(tuned) == adapted
    finally:
        tuned.close()
        base.close()


def test_adapter_engines_share_one_scoring_context_and_score_with_their_adapter(base_and_adapter):
    import numpy as np
    from llama_cpp import Llama

    from wattlm.engines import scoring_context
    from wattlm.engines.batching.engine import LlamaCppBatchEngine

    base_path, adapter = base_and_adapter
    base = LlamaCppBatchEngine(base_path, n_ctx=128, n_threads=2, max_seqs=1, name="base")
    tuned = LlamaCppBatchEngine(base_path, n_ctx=128, n_threads=2, max_seqs=1, name="task", lora_path=adapter,
                                share_weights_with=base)
    try:
        shared = base._scorer._context
        assert shared is tuned._scorer._context and shared.users == 2  # one context and buffer per base GGUF
        tokens = base.tokenize(PROMPT)

        def scored(engine) -> list[float]:
            answer = engine.generate_with_logprobs(tokens, SamplingParams(max_tokens=0), 0, echo=True)
            return answer.token_logprobs[1:]

        def direct(**lora) -> list[float]:
            llm = Llama(model_path=str(base_path), n_ctx=128, n_threads=2, logits_all=True, verbose=False, **lora)
            llm.eval(tokens)
            rows = Llama.logits_to_logprobs(np.array(llm.scores[: len(tokens) - 1]), axis=-1)
            llm.close()
            return [float(rows[i, tokens[i + 1]]) for i in range(len(tokens) - 1)]

        plain, adapted = scored(base), scored(tuned)  # the adapter is switched on and off per request
        np.testing.assert_allclose(plain, direct(), atol=2e-3)
        np.testing.assert_allclose(adapted, direct(lora_path=str(adapter)), atol=2e-3)
        assert not np.allclose(plain, adapted, atol=2e-3)
        assert scored(base) == plain
        base.close()
        assert shared.users == 1 and scored(tuned) == adapted  # still served for the adapter engine
    finally:
        tuned.close()
        base.close()
    assert shared.users == 0 and shared.llm is None and shared.key not in scoring_context._SHARED  # the last freed it


def test_bad_adapter_and_mismatched_sharing_are_clear_errors(base_and_adapter, tmp_path, smollm2_path):
    from wattlm.engines.batching.engine import LlamaCppBatchEngine

    base_path, _ = base_and_adapter
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf")
    with pytest.raises(WattError, match="LoRA adapter"):
        LlamaCppBatchEngine(base_path, n_ctx=64, n_threads=2, max_seqs=1, lora_path=junk)
    base = LlamaCppBatchEngine(base_path, n_ctx=64, n_threads=2, max_seqs=1)
    try:
        with pytest.raises(WattError, match="cannot share weights"):
            LlamaCppBatchEngine(smollm2_path, n_ctx=64, n_threads=2, max_seqs=1, share_weights_with=base)
        assert answer(base)  # the failed attempt gave its share back
    finally:
        base.close()


def test_watt_serve_lora_serves_the_adapter_as_a_model_sharing_weights(base_and_adapter, tmp_path, monkeypatch):
    import typer
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from wattlm.registry import Registry
    from wattlm.serve import server
    from wattlm.serve.cli import serve_command

    base_path, adapter = base_and_adapter
    registry = Registry(tmp_path / "ws")
    registry.register("model", "tiny-base", path=base_path.parent, tier="industry", format="gguf",
                      meta={"file": base_path.name})
    registry.close()
    served = {}
    monkeypatch.setattr(server, "serve", lambda app, host, port: served.setdefault("app", app))
    cli = typer.Typer()
    cli.command()(serve_command)
    args = ["--model", "tiny-base", "--lora", f"tiny-task={adapter}", "--home", str(tmp_path / "ws"), "--n-ctx", "128",
            "--max-seqs", "2", "--threads", "2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    app = served["app"]
    engines = app.state.served_models.engines()
    try:
        assert engines["tiny-task"]._model is engines["tiny-base"]._model  # one copy of the weights
        with TestClient(app) as client:
            request = {"prompt": PROMPT, "max_tokens": 8, "temperature": 0, "ignore_eos": True}
            texts = {model: client.post("/v1/completions", json={**request, "model": model}).json()["choices"][0]["text"]
                     for model in ("tiny-base", "tiny-task")}
            card = client.get("/v1/models/tiny-task").json()
        assert texts["tiny-base"] != texts["tiny-task"]
        assert card["lora"] == adapter.name and card["tier"] == "task"
    finally:
        for engine in engines.values():
            engine.close()
    bad = CliRunner().invoke(cli, ["--model", "tiny-base", "--lora", "oops", "--home", str(tmp_path / "ws")])
    assert bad.exit_code != 0 and "NAME=PATH" in str(bad.exception)
