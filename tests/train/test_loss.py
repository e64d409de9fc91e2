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


def test_fused_loss_under_bf16_autocast_matches_plain_head(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.randint(0, model.config.vocab_size, (2, 20), generator=torch.Generator().manual_seed(3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reference = model(input_ids=ids, labels=ids).loss
    reference.backward()
    expected = model.model.layers[0].mlp.down_proj.weight.grad.clone()
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        nll, n = causal_lm_nll(model, ids, chunk=7)
    (nll / n).backward()
    assert torch.allclose(nll / n, reference.float(), rtol=2e-2)
    got = model.model.layers[0].mlp.down_proj.weight.grad
    assert torch.nn.functional.cosine_similarity(got.flatten(), expected.flatten(), dim=0) > 0.99


def test_softcapping_and_ignored_targets():
    from wattlm.train.loss import linear_cross_entropy

    torch.manual_seed(0)
    hidden = torch.randn(9, 8, requires_grad=True)
    weight = torch.randn(30, 8, requires_grad=True)
    targets = torch.tensor([1, 2, -100, 4, 5, 6, -100, 8, 9])
    loss = linear_cross_entropy(hidden, weight, targets, chunk=4, softcap=5.0)
    loss.backward()
    ref_h, ref_w = hidden.detach().clone().requires_grad_(), weight.detach().clone().requires_grad_()
    logits = torch.tanh((ref_h @ ref_w.T) / 5.0) * 5.0
    ref = torch.nn.functional.cross_entropy(logits, targets, ignore_index=-100, reduction="sum")
    ref.backward()
    assert torch.allclose(loss, ref, atol=1e-5)
    assert torch.allclose(hidden.grad, ref_h.grad, atol=1e-5)
    assert torch.allclose(weight.grad, ref_w.grad, atol=1e-5)
