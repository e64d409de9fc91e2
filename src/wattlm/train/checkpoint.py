"""Training checkpoints: enough state to continue a killed run to the same final step.

Only trainable tensors are saved (the LoRA adapters, or every weight in a full fine-tune), with the
optimizer, the RNG states (one per process) and the per-step history. The batch order is a function of the seed, so
resuming replays the sampler to the saved step instead of storing it. Each checkpoint is written to a
temp file and renamed, so a kill during a save leaves the previous checkpoint intact. Checkpoints are
loaded with `torch.load(weights_only=True)`: they hold only tensors and plain values, so nothing in
one can run code. Under `train.distributed.strategy: fsdp` the same file is written and read collectively
by fsdp_checkpoint.py (optimizer state keyed by parameter name, marked with FSDP_LAYOUT).
"""

from __future__ import annotations

from pathlib import Path

from wattlm.errors import WattError
from wattlm.shared.records import atomic_path

CHECKPOINT = "checkpoint.pt"
FSDP_LAYOUT = "fsdp-full"  # a checkpoint of fsdp_checkpoint.py; ddp checkpoints carry no layout


def save_checkpoint(folder: Path, model, optimizer, step: int, history: dict, tokens: int, seconds: float,
                    rng_states: list) -> None:
    """`history`: per-step series (losses, step times, loss parts); `rng_states`: one per process."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step,
        "trainable": {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad},
        "optimizer": optimizer.state_dict(),
        "torch_rng": rng_states,
        "history": history,
        "tokens": tokens,
        "seconds": seconds,
    }
    with atomic_path(folder / CHECKPOINT) as tmp:
        torch.save(state, tmp)


def load_checkpoint(folder: Path | None, model, optimizer, rank: int = 0) -> dict | None:
    """Restore model/optimizer/RNG from `folder` if it holds a checkpoint; returns its counters."""
    if folder is None or not (folder / CHECKPOINT).exists():
        return None
    state = read_checkpoint(folder)
    if state.get("layout") == FSDP_LAYOUT:  # its optimizer state is keyed by name, not by position
        raise WattError(f"checkpoint in {folder} was written with train.distributed.strategy fsdp: resume it "
                        "with that strategy, or delete that folder to start the run afresh")
    import torch

    params = dict(model.named_parameters())
    missing = set(state["trainable"]) - set(params)
    if missing:
        raise WattError(f"checkpoint in {folder} does not match the model (e.g. {sorted(missing)[0]}); "
                        "delete that folder to start the run afresh")
    with torch.no_grad():
        for name, tensor in state["trainable"].items():
            params[name].copy_(tensor)
    optimizer.load_state_dict(state["optimizer"])
    if "history" not in state:
        raise WattError(f"checkpoint in {folder} was written by an older wattlm; delete that folder to start afresh")
    rng = state["torch_rng"]
    # Each process continues its own dropout stream; with a different process count the streams differ.
    torch.set_rng_state(rng[rank] if rank < len(rng) else rng[0])
    return {k: state[k] for k in ("step", "history", "tokens", "seconds")}


def read_checkpoint(folder: Path) -> dict:
    """The checkpoint in `folder` as plain tensors and values; a one-line WattError if it is anything else."""
    import torch

    # weights_only: tensors, numbers, strings and containers only. A checkpoint folder can come from
    # elsewhere (a copied run), and a full unpickle would run whatever code the file names.
    try:
        state = torch.load(folder / CHECKPOINT, weights_only=True)
    except Exception as err:  # pickle.UnpicklingError for a forbidden global; anything else is damage
        first_line = (str(err).strip().splitlines() or [""])[0][:200]
        raise WattError(f"cannot load checkpoint {folder / CHECKPOINT} as plain tensors ({type(err).__name__}: "
                        f"{first_line}); delete that folder to start the run afresh") from None
    if not isinstance(state, dict):
        raise WattError(f"checkpoint {folder / CHECKPOINT} holds a {type(state).__name__}, not a training "
                        "state; delete that folder to start the run afresh")
    return state
