import torch
from transformers import AutoModelForCausalLM

from wattlm.train.loss import causal_lm_nll


def test_chunked_loss_equals_transformers_loss(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids = torch.randint(0, model.config.vocab_size, (3, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = model(input_ids=ids, labels=ids).loss
        nll, n = causal_lm_nll(model, ids, chunk=16)  # 117 positions in 8 chunks
    assert n == 3 * 39
    assert torch.allclose(nll / n, reference, atol=1e-5)


def test_chunked_loss_gradients_match(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.randint(0, model.config.vocab_size, (2, 24), generator=torch.Generator().manual_seed(2))
    model(input_ids=ids, labels=ids).loss.backward()
    expected = model.model.embed_tokens.weight.grad.clone()
    model.zero_grad()
    nll, n = causal_lm_nll(model, ids, chunk=10)
    (nll / n).backward()
    assert torch.allclose(model.model.embed_tokens.weight.grad, expected, atol=1e-6)
