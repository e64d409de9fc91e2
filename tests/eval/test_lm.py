import pytest
import torch

from wattlm.eval.lm import chat_prompt, encode_pair, greedy_generate, loglikelihoods
from wattlm.models.hf import load_causal_lm, load_tokenizer


@pytest.fixture(scope="module")
def lm(tiny_model_dir):
    return load_causal_lm(tiny_model_dir), load_tokenizer(tiny_model_dir)


def _reference(model, tokenizer, context, continuation):
    """Unbatched, unpadded: the full logits of one sequence."""
    ctx, cont = encode_pair(tokenizer, context, continuation)
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logprobs = model(input_ids=ids).logits[0].log_softmax(-1)
    return sum(float(logprobs[len(ctx) - 1 + k, t]) for k, t in enumerate(cont))


def test_trailing_space_moves_to_continuation(lm):
    _, tokenizer = lm
    ctx, cont = encode_pair(tokenizer, "Answer: ", "Paris")
    assert tokenizer.decode(ctx) == "Answer:" and tokenizer.decode(cont) == " Paris"


def test_batched_loglikelihoods_match_single_sequences(lm):
    model, tokenizer = lm
    requests = [("The transformer oil was", " tested"), ("变电站巡视时，值班人员应当", "检查设备温度"),
                ("A much longer context about relay protection settings and breaker failure", " trips"),
                ("Q:", " yes")]
    batched = loglikelihoods(model, tokenizer, requests, batch_size=3)
    for request, got in zip(requests, batched, strict=True):
        assert got.logprob == pytest.approx(_reference(model, tokenizer, *request), abs=1e-3)
        assert got.logprob < 0


@pytest.mark.parametrize("which", ["tiny_model_dir", "tiny_gemma"])
def test_shared_contexts_score_like_whole_sequences(which, request):
    """Choices that share a context reuse its cache; the scores equal whole-sequence ones, also past
    Gemma's sliding window (8 tokens here) and with contexts of different lengths left-padded together."""
    folder = request.getfixturevalue(which)
    model, tokenizer = load_causal_lm(folder), load_tokenizer(folder)
    long_context = "阅读材料：主变压器轻瓦斯保护动作后，应检查气体继电器内的气体。\n问题：应先检查什么？\n答案："
    requests = [(long_context, c) for c in ("气体继电器", "油温", "冷却器的风扇和油泵")]
    requests += [("Question: what trips the breaker?\nAnswer:", c) for c in (" relay", " a fault current")]
    requests += [("A lone context", " scored whole")]
    got = loglikelihoods(model, tokenizer, requests, batch_size=2)
    for pair, result in zip(requests, got, strict=True):
        assert result.logprob == pytest.approx(_reference(model, tokenizer, *pair), abs=1e-3)
        assert result.tokens == len(encode_pair(tokenizer, *pair)[1])


def test_greedy_flag_is_true_for_the_models_own_continuation(lm):
    model, tokenizer = lm
    ids = tokenizer("Grid frequency", return_tensors="pt")["input_ids"]
    out = model.generate(ids, max_new_tokens=3, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    own = tokenizer.decode(out[0, ids.shape[1]:])
    [result] = loglikelihoods(model, tokenizer, [("Grid frequency", own)])
    if encode_pair(tokenizer, "Grid frequency", own)[1] == out[0, ids.shape[1]:].tolist():
        assert result.greedy


def test_batched_generation_matches_one_at_a_time(lm):
    model, tokenizer = lm
    prompts = ["问题：主变压器的油温上限是多少？\n答案：", "Question: what trips the breaker?\nAnswer:", "短"]
    batched = greedy_generate(model, tokenizer, prompts, max_new_tokens=8, batch_size=3, use_chat_template=False)
    single = [greedy_generate(model, tokenizer, [p], max_new_tokens=8, use_chat_template=False)[0] for p in prompts]
    assert batched == single
    assert all("\n" not in a for a in batched)


def test_chat_template_wraps_prompt_when_present(lm):
    _, tokenizer = lm
    text, add_special = chat_prompt(tokenizer, "你好")
    if tokenizer.chat_template:
        assert text != "你好" and "你好" in text and not add_special
    else:
        assert (text, add_special) == ("你好", True)
