"""The loop's AdamW (train/loop.py::adamw): torch's fused kernel for plain parameters, with the same
updates as torch's default per-parameter loop."""

import torch

from wattlm.train.config import TrainConfig
from wattlm.train.loop import adamw


def _params(seed):
    generator = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(shape, generator=generator)) for shape in ((16, 8), (8,), (3, 5, 4))]


def test_fused_adamw_matches_the_per_parameter_loop():
    config = TrainConfig(lr=1e-2, weight_decay=0.1)
    fast, reference = _params(0), _params(0)
    fast_opt = adamw(fast, config)
    reference_opt = torch.optim.AdamW(reference, lr=config.lr, weight_decay=config.weight_decay, foreach=False)
    assert fast_opt.defaults["fused"] and not reference_opt.defaults["fused"]
    generator = torch.Generator().manual_seed(1)
    for step in range(6):
        for group in (fast_opt.param_groups[0], reference_opt.param_groups[0]):
            group["lr"] = config.lr * (step + 1) / 6  # the loop sets the rate every step
        for a, b in zip(fast, reference, strict=True):
            a.grad = torch.randn(a.shape, generator=generator)
            b.grad = a.grad.clone()
        fast_opt.step()
        reference_opt.step()
    assert not torch.allclose(fast[0], _params(0)[0], atol=1e-3)  # the weights moved
    for a, b in zip(fast, reference, strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    # the state (what a checkpoint keeps) loads into either kind
    torch.optim.AdamW(_params(0), lr=config.lr, foreach=False).load_state_dict(fast_opt.state_dict())


def test_adamw_keeps_the_default_for_other_tensor_types():
    # e.g. FSDP's sharded DTensor parameters; here a bare leaf tensor stands in for one
    assert not adamw([torch.zeros(3, requires_grad=True)], TrainConfig()).defaults["fused"]
