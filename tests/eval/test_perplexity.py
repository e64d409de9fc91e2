import math

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from wattlm.eval.perplexity import perplexity


def test_perplexity_matches_transformers_on_one_window(tiny_model_dir):
    text = "Switching orders are checked twice before the operator opens the isolator."
    result = perplexity(tiny_model_dir, [text], seq_len=512)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids = tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]
    with torch.no_grad():
        loss = model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss
    assert result.tokens == len(ids) - 1
    assert math.isclose(result.ppl, math.exp(float(loss)), rel_tol=1e-4)


def test_windows_and_cap(tiny_model_dir):
    texts = ["word " * 300, "another document " * 100]
    capped = perplexity(tiny_model_dir, texts, seq_len=64, max_tokens=100)
    assert capped.tokens == 64 - 1 + 36 - 1
    full = perplexity(tiny_model_dir, texts, seq_len=64, max_tokens=None)
    assert full.tokens > capped.tokens and full.documents == 2
