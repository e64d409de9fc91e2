"""Tokenizer endpoints and echo/logprobs on the real SmolLM2, checked against a direct llama.cpp computation.

This is what lm-evaluation-harness's `local-completions` model does to score multiple choice: tokenize
the context, send context+continuation with echo and logprobs, sum the continuation's token logprobs.
"""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration

llama_cpp = pytest.importorskip("llama_cpp")

from wattlm.engines.params import SamplingParams  # noqa: E402
from wattlm.serve import create_app  # noqa: E402

CONTEXT = "Question: What is the capital of France?\nAnswer:"
CHOICES = [" Paris", " a bicycle"]


@pytest.fixture(scope="module")
def reference(smollm2_path):
    """An independent llama.cpp context: prompt logprobs straight from `Llama(logits_all=True)`."""
    llm = llama_cpp.Llama(model_path=str(smollm2_path), n_ctx=128, logits_all=True, verbose=False, n_threads=2)

    def logprobs(tokens: list[int]) -> list[float]:
        llm.reset()
        llm.eval(tokens)
        rows = llama_cpp.Llama.logits_to_logprobs(np.array(llm.scores[: len(tokens) - 1]), axis=-1)
        return [float(rows[i, tokens[i + 1]]) for i in range(len(tokens) - 1)]

    yield logprobs
    llm.close()


@pytest.fixture(scope="module")
def api(smollm2_engine, batch_engine):
    with TestClient(create_app({"simple": smollm2_engine, "batch": batch_engine})) as client:
        yield client


@pytest.mark.parametrize("model", ["simple", "batch"])
def test_tokenizer_endpoints_match_the_engine(api, smollm2_engine, model):
    body = api.post("/tokenize", json={"model": model, "prompt": CONTEXT}).json()
    assert body["tokens"] == smollm2_engine.tokenize(CONTEXT) and body["count"] == len(body["tokens"])
    assert api.post("/detokenize", json={"model": model, "tokens": body["tokens"]}).json()["prompt"] == CONTEXT
    info = api.get("/tokenizer_info", params={"model": model}).json()
    assert info["vocab_size"] == 49152 and info["has_chat_template"] is True
    assert info["eos_token"] and isinstance(info["eos_token_id"], int)
    response = api.post("/detokenize", json={"model": model, "tokens": [info["vocab_size"]]})
    assert response.status_code == 400 and "out of range" in response.json()["error"]["message"]


@pytest.mark.parametrize("model", ["simple", "batch"])
def test_echo_logprobs_equal_a_direct_computation_and_rank_choices(api, reference, model):
    ctx_tokens = api.post("/tokenize", json={"model": model, "prompt": CONTEXT}).json()["tokens"]
    scores = []
    for choice in CHOICES:
        prompt = CONTEXT + choice
        tokens = api.post("/tokenize", json={"model": model, "prompt": prompt}).json()["tokens"]
        request = {"model": model, "prompt": prompt, "max_tokens": 0, "echo": True, "logprobs": 1, "temperature": 0}
        body = api.post("/v1/completions", json=request).json()
        (answer,) = body["choices"]
        assert answer["text"] == prompt
        assert body["usage"] == {"prompt_tokens": len(tokens), "completion_tokens": 0, "total_tokens": len(tokens)}
        logprobs = answer["logprobs"]
        assert len(logprobs["tokens"]) == len(tokens) and logprobs["token_logprobs"][0] is None
        assert "".join(logprobs["tokens"]) == prompt
        assert logprobs["text_offset"][-1] == len(prompt) - len(logprobs["tokens"][-1])
        direct = reference(tokens)
        np.testing.assert_allclose(logprobs["token_logprobs"][1:], direct, atol=2e-3)
        for token, logprob, top in zip(logprobs["tokens"][1:], logprobs["token_logprobs"][1:], logprobs["top_logprobs"][1:], strict=True):
            assert top[token] == logprob and max(top.values()) >= logprob and len(top) <= 2
        scores.append((sum(logprobs["token_logprobs"][len(ctx_tokens):]), sum(direct[len(ctx_tokens) - 1 :])))
    assert scores[0][0] > scores[1][0]  # " Paris" wins, as in the direct computation
    assert (scores[0][0] > scores[1][0]) == (scores[0][1] > scores[1][1])


def test_token_id_prompt_with_one_generated_token_as_lm_eval_sends_it(api, smollm2_engine):
    tokens = smollm2_engine.tokenize(CONTEXT + CHOICES[0])
    request = {"model": "batch", "prompt": [tokens], "max_tokens": 1, "echo": True, "logprobs": 1, "temperature": 0}
    body = api.post("/v1/completions", json=request).json()
    logprobs = body["choices"][0]["logprobs"]
    assert len(logprobs["token_logprobs"]) == len(tokens) + 1  # the prompt, then the generated token
    assert body["usage"]["completion_tokens"] == 1
    greedy = api.post("/v1/completions", json={"model": "simple", "prompt": CONTEXT + CHOICES[0], "max_tokens": 1,
                                               "temperature": 0}).json()["choices"][0]["text"]
    assert body["choices"][0]["text"] == CONTEXT + CHOICES[0] + greedy
    assert logprobs["token_logprobs"][-1] == max(logprobs["top_logprobs"][-1].values())  # greedy took the best


def test_logprobs_of_generated_tokens_without_echo(api):
    request = {"model": "simple", "prompt": "The sky is", "max_tokens": 3, "logprobs": 2, "temperature": 0}
    answer = api.post("/v1/completions", json=request).json()["choices"][0]
    plain = api.post("/v1/completions", json={**request, "logprobs": None}).json()["choices"][0]
    assert answer["text"] == plain["text"]
    assert len(answer["logprobs"]["tokens"]) == 3 and "".join(answer["logprobs"]["tokens"]) == answer["text"]
    assert answer["logprobs"]["text_offset"][0] == len("The sky is")
    assert all(logprob <= 0 for logprob in answer["logprobs"]["token_logprobs"])


def test_embeddings_rank_similar_sentences_higher(api):
    texts = [
        "The transformer at the substation overheated and tripped the line.",
        "A substation transformer got too hot, so the power line was disconnected.",
        "My grandmother bakes chocolate cookies every Sunday afternoon.",
    ]
    body = api.post("/v1/embeddings", json={"model": "batch", "input": texts}).json()
    vectors = np.array([item["embedding"] for item in body["data"]])  # (3, n_embd)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > unrelated, (similar, unrelated)
    assert body["usage"]["prompt_tokens"] > 30


@pytest.mark.parametrize("model", ["simple", "batch"])
def test_echo_keeps_the_entry_of_a_generated_end_of_sequence(api, reference, smollm2_engine, model):
    """lm-eval drops the last logprob entry as "the generated token"; when that token is the end of
    sequence, the entry must still be there, or the continuation's last token is dropped instead."""
    prompt = ("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
              "<|im_start|>assistant\nThe capital of France is Paris.")  # greedy next: <|im_end|>
    tokens = smollm2_engine.tokenize(prompt)
    request = {"model": model, "prompt": [tokens], "max_tokens": 1, "echo": True, "logprobs": 1, "temperature": 0}
    answer = api.post("/v1/completions", json=request).json()["choices"][0]
    assert answer["text"].endswith("Paris.")  # greedy ended the turn: the generated token has no text
    logprobs = answer["logprobs"]
    assert len(logprobs["token_logprobs"]) == len(tokens) + 1
    assert logprobs["token_logprobs"][len(tokens) - 1] == pytest.approx(reference(tokens)[-1], abs=2e-3)


@pytest.mark.parametrize("model", ["simple", "batch"])
def test_a_prompt_longer_than_one_logits_chunk_scores_like_one_pass(api, reference, smollm2_engine, model):
    """The scoring context decodes `ROWS` tokens at a time and reads logits chunk by chunk: the rows on
    both sides of each chunk boundary must be the same as from one `logits_all` pass."""
    from wattlm.engines.scoring_context import ROWS

    prompt = " ".join(f"Line {n}: the breaker at substation {n} tripped." for n in range(9))
    tokens = smollm2_engine.tokenize(prompt)
    assert ROWS < len(tokens) <= 128  # two chunks, within the reference's context
    request = {"model": model, "prompt": [tokens], "max_tokens": 3, "echo": True, "logprobs": 0, "temperature": 0,
               "ignore_eos": True}
    logprobs = api.post("/v1/completions", json=request).json()["choices"][0]["logprobs"]
    assert len(logprobs["token_logprobs"]) == len(tokens) + 3
    np.testing.assert_allclose(logprobs["token_logprobs"][1 : len(tokens)], reference(tokens), atol=2e-3)
    greedy = "".join(chunk.text for chunk in smollm2_engine.generate(tokens, SamplingParams(max_tokens=3, temperature=0,
                                                                                                ignore_eos=True)))
    assert "".join(logprobs["tokens"][len(tokens):]) == greedy  # generation continues from the last chunk's row
