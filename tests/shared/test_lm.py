"""LM math: packing, the chunked fused NLL (its numbers and gradients against transformers'), log-softmax."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from wattlm.errors import WattError
from wattlm.shared.lm import causal_lm_nll, eval_windows, linear_cross_entropy, log_softmax, pack, tokenize_stream


def test_pack_drops_only_the_tail():
    blocks = pack(list(range(10)), 4)
    assert blocks.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_short_stream_becomes_one_block_and_tiny_stream_fails():
    assert pack([1, 2, 3], 8).tolist() == [[1, 2, 3]]
    with pytest.raises(WattError, match="fewer than 2 tokens"):
        pack([1], 8)


def test_eval_windows_cover_everything():
    windows = eval_windows(list(range(10)), 4)
    assert [w.tolist() for w in windows] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_stream_ends_every_document_with_eos(tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    ids = tokenize_stream(tokenizer, ["变压器", "relay"])
    assert ids.count(tokenizer.eos_token_id) == 2 and ids[-1] == tokenizer.eos_token_id


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


def test_training_and_evaluation_paths_give_the_same_nll(tiny_model_dir):
    """Train (fused autograd Function) and eval (no-grad chunks) compute one number for one batch."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids = torch.randint(0, model.config.vocab_size, (2, 33), generator=torch.Generator().manual_seed(4))
    labels = ids.clone()
    labels[:, :12] = -100
    for chunk in (8, 1024):
        trained, n_trained = causal_lm_nll(model, ids, chunk=chunk, labels=labels)
        with torch.no_grad():
            evaluated, n_evaluated = causal_lm_nll(model, ids, chunk=chunk, labels=labels)
        assert n_trained == n_evaluated == 2 * 21
        assert torch.allclose(trained.detach(), evaluated, rtol=1e-6)


def test_log_softmax_matches_torch_and_survives_large_logits():
    rows = np.random.default_rng(0).normal(size=(3, 50)).astype(np.float32) * 30 + 1e4
    expected = torch.log_softmax(torch.from_numpy(rows).double(), dim=-1).numpy()
    assert np.allclose(log_softmax(rows), expected, atol=1e-9)
    assert np.allclose(np.exp(log_softmax(rows)).sum(axis=1), 1.0)


def test_importing_lm_math_does_not_import_torch():
    """The data stage's perplexity filter imports log_softmax; it must not pay for torch."""
    code = "import sys, wattlm.shared.lm; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_fused_loss_keeps_every_tensor_on_the_inputs_device():
    """On a GPU the loss must not mix in CPU tensors; the meta device (shapes only) shows it here: a CPU
    accumulator silently turned the no-grad loss into a CPU tensor before."""
    import torch

    from wattlm.shared.lm import _nll_no_grad, linear_cross_entropy

    hidden = torch.empty(6, 8, device="meta", requires_grad=True)
    weight = torch.empty(20, 8, device="meta", requires_grad=True)
    targets = torch.zeros(6, dtype=torch.long, device="meta")
    total = linear_cross_entropy(hidden, weight, targets, chunk=4)
    total.backward()
    assert total.device.type == hidden.grad.device.type == weight.grad.device.type == "meta"
    assert _nll_no_grad(hidden.detach(), weight.detach(), targets, 4, None).device.type == "meta"
