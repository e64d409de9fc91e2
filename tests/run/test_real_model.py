"""End to end on the packaged real model: documents -> industry model -> GGUF -> OpenAI API.

SmolLM2-135M keeps this under a few minutes on two cores; `make demo` runs the same path on Gemma 3.
"""

from pathlib import Path

import pytest

from wattlm.recipe import load_recipe
from wattlm.registry import Registry
from wattlm.run.pipeline import run_recipe

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "power-grid"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, smollm2_path):
    work = tmp_path_factory.mktemp("real")
    recipe = work / "recipe.yaml"
    recipe.write_text(
        f"name: smol-it\nfoundation: smollm2-135m\n"
        f"data: {{inputs: ['{EXAMPLE / 'raw'}'], heldout_fraction: 0.15}}\n"
        "train: {steps: 12, seq_len: 256, batch_size: 4, lr: 0.001, warmup_steps: 2}\n"
        f"eval: {{general: '{EXAMPLE / 'general'}', max_tokens: 4000}}\n"
        # check: all, not only the served q8_0: the f16 file must match transformers token for token.
        "export: {quants: [q8_0], check: all, check_prompt: 'Before switching, the dispatcher', check_tokens: 8}\n"
    )
    registry = Registry(work / "ws")
    return registry, run_recipe(load_recipe(recipe), registry, progress=False)


def test_industry_model_learns_the_domain(finished_run):
    _, summary = finished_run
    assert summary.data["docs_kept"] >= 40
    assert summary.scores["industry"]["domain"] < summary.scores["foundation"]["domain"]
    f16 = next(e for e in summary.exports if e["quant"] == "f16")
    # The exported f16 GGUF continues the prompt exactly as transformers does.
    assert f16["greedy_match"] == f16["greedy_total"] == 8
    # Quality column: llama.cpp perplexity of each file on the same held-out windows.
    hf_ppl = summary.scores["industry"]["domain"]
    q8 = next(e for e in summary.exports if e["quant"] == "q8_0")
    assert abs(f16["ppl"] - hf_ppl) / hf_ppl < 0.01
    assert abs(q8["ppl"] - hf_ppl) / hf_ppl < 0.05


def test_exported_model_serves_openai_clients(finished_run):
    from openai import OpenAI

    from wattlm.engines.llamacpp import LlamaCppEngine
    from wattlm.engines.model_files import served_file
    from wattlm.serve import create_app, running_server
    from wattlm.serve.launch import launch, model_card  # noqa: F401  (launch is the CLI path)

    registry, _ = finished_run
    art, gguf = served_file(registry, "smol-it-industry")
    assert gguf.name == "model-q8_0.gguf"
    engine = LlamaCppEngine(gguf, n_ctx=1024, n_threads=2, name=art.name)
    app = create_app({art.name: engine}, [model_card(registry, art, gguf)])
    with running_server(app) as base_url:
        client = OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0)
        listed = client.models.list().data
        assert [m.id for m in listed] == ["smol-it-industry"]
        assert listed[0].model_extra["tier"] == "industry"
        done = client.completions.create(model=art.name, prompt="The substation operator", max_tokens=12,
                                         temperature=0)
        assert done.choices[0].finish_reason == "length" and done.usage.completion_tokens == 12
        chat = client.chat.completions.create(model=art.name, messages=[{"role": "user", "content": "Hi"}],
                                              max_tokens=8, temperature=0)
        assert chat.choices[0].message.role == "assistant" and chat.choices[0].message.content
