"""A checkpoint is loaded as plain tensors: one that smuggles a pickled callable is refused, not run."""

from __future__ import annotations

import pytest

from wattlm.errors import WattError
from wattlm.train.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint

torch = pytest.importorskip("torch")


class Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('checkpoint code ran')",))


def _model_and_optimizer():
    model = torch.nn.Linear(4, 2)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-3)


def test_a_saved_checkpoint_loads_with_weights_only(tmp_path):
    model, optimizer = _model_and_optimizer()
    model(torch.ones(1, 4)).sum().backward()
    optimizer.step()
    save_checkpoint(tmp_path, model, optimizer, step=3, history={"loss": [1.0, 0.5]}, tokens=12, seconds=0.5,
                    rng_states=[torch.get_rng_state()])
    fresh, fresh_optimizer = _model_and_optimizer()
    counters = load_checkpoint(tmp_path, fresh, fresh_optimizer)
    assert counters == {"step": 3, "history": {"loss": [1.0, 0.5]}, "tokens": 12, "seconds": 0.5}
    assert torch.equal(fresh.weight, model.weight)


def test_a_checkpoint_with_code_in_it_is_refused(tmp_path):
    torch.save({"step": 1, "trainable": {}, "payload": Boom()}, tmp_path / CHECKPOINT)
    model, optimizer = _model_and_optimizer()
    with pytest.raises(WattError, match="as plain tensors.*delete that folder"):
        load_checkpoint(tmp_path, model, optimizer)
