"""Training checkpoints: enough state to continue a killed run to the same final step.

Only trainable tensors are saved (the LoRA adapters, or every weight in a full fine-tune), with the
optimizer, the RNG states and the loss history. The batch order is a function of the seed, so
resuming replays the sampler to the saved step instead of storing it. Each checkpoint is written to a
temp file and renamed, so a kill during a save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
from pathlib import Path

from wattlm.errors import WattError

CHECKPOINT = "checkpoint.pt"


def save_checkpoint(folder: Path, model, optimizer, step: int, losses: list[float], tokens: int,
                    seconds: float) -> None:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step,
        "trainable": {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad},
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "losses": list(losses),
        "tokens": tokens,
        "seconds": seconds,
    }
    tmp = folder / f"{CHECKPOINT}.tmp-{os.getpid()}"
    torch.save(state, tmp)
    os.replace(tmp, folder / CHECKPOINT)


def load_checkpoint(folder: Path | None, model, optimizer) -> dict | None:
    """Restore model/optimizer/RNG from `folder` if it holds a checkpoint; returns its counters."""
    if folder is None or not (folder / CHECKPOINT).exists():
        return None
    import torch

    state = torch.load(folder / CHECKPOINT, weights_only=False)
    params = dict(model.named_parameters())
    missing = set(state["trainable"]) - set(params)
    if missing:
        raise WattError(f"checkpoint in {folder} does not match the model (e.g. {sorted(missing)[0]}); "
                        "delete that folder to start the run afresh")
    with torch.no_grad():
        for name, tensor in state["trainable"].items():
            params[name].copy_(tensor)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    return {k: state[k] for k in ("step", "losses", "tokens", "seconds")}
