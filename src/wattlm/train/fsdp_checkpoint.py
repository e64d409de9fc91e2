"""Training checkpoints under FSDP (`train.distributed.strategy: fsdp`): the contract of checkpoint.py.

The same file, `checkpoint.pt`, with the same content as a ddp checkpoint (trainable tensors, optimizer
state, one RNG state per process, the per-step history and counters), except that the optimizer state is
keyed by parameter name (torch's "FQN" form) and the file says `layout: fsdp-full`.

Design: a *full* state dict gathered to rank 0, written with the same temp-file-and-rename as ddp's.
torch's `get_model_state_dict`/`get_optimizer_state_dict` with `full_state_dict=True, cpu_offload=True`
gather each sharded (DTensor) tensor in turn onto rank 0's CPU; `set_*_state_dict` with
`broadcast_from_rank0=True` sends rank 0's tensors to every process, which keeps its own shard. Why not a
sharded `torch.distributed.checkpoint` (DCP) folder:
- What we save is small where FSDP is used for LoRA (the adapters and their Adam moments), so gathering it
  costs little; only a full fine-tune of a model whose trainable state outgrows rank 0's CPU memory would
  need DCP's per-rank files.
- Only rank 0 touches the disk: a multi-node run needs no filesystem shared by all nodes for its
  checkpoints, and the atomic rename of one file is the whole crash-safety story (a DCP folder needs a
  temp folder, a rename and a pointer).
- The file is read with `torch.load(weights_only=True)`; DCP's reader unpickles its `.metadata` with
  plain `pickle.load`, which would run code from a checkpoint someone else copied in.
- A full state dict is independent of the process count: a run resumes on any number of processes (each
  process takes the shard of the new mesh; dropout streams then differ, as under ddp).
A ddp checkpoint and an fsdp one of the same run share the run folder (the strategy is not part of the
cache key); each loader refuses the other's layout in one line rather than loading it wrong.
"""

from __future__ import annotations

from pathlib import Path

from wattlm.errors import WattError
from wattlm.shared.records import atomic_path
from wattlm.train.checkpoint import CHECKPOINT, FSDP_LAYOUT, read_checkpoint

COUNTERS = ("step", "history", "tokens", "seconds", "torch_rng")


def _trainable_shapes(model) -> dict[str, tuple]:
    # A DTensor's .shape is the whole tensor's, so these compare with a gathered checkpoint on any mesh.
    return {name: tuple(p.shape) for name, p in model.named_parameters() if p.requires_grad}


def save_fsdp_checkpoint(folder: Path, model, optimizer, dist, step: int, history: dict, tokens: int,
                         seconds: float, rng_states: list) -> None:
    """Collective: every process calls it (each gives its shards to the gather); rank 0 writes."""
    import torch
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    # cpu_offload with full_state_dict: only rank 0 receives the gathered tensors, the others get {}.
    options = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
    model_state = get_model_state_dict(model, options=options)
    optimizer_state = get_optimizer_state_dict(model, optimizer, options=options)
    if not dist.is_main:
        return
    trainable = _trainable_shapes(model)
    state = {
        "layout": FSDP_LAYOUT,
        "step": step,
        # ignore_frozen_params drops frozen weights but keeps buffers: the contract is trainable tensors only
        "trainable": {name: tensor for name, tensor in model_state.items() if name in trainable},
        "optimizer": optimizer_state,
        "torch_rng": rng_states,
        "history": history,
        "tokens": tokens,
        "seconds": seconds,
    }
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / CHECKPOINT) as tmp:
        torch.save(state, tmp)


def _mismatch(state: dict, model, folder: Path) -> str | None:
    """Why `state` cannot be loaded into `model` (one line), or None."""
    if state.get("layout") != FSDP_LAYOUT:
        return (f"checkpoint in {folder} was written without train.distributed.strategy fsdp: resume it with "
                "the strategy it was written with, or delete that folder to start the run afresh")
    if any(key not in state for key in ("trainable", "optimizer", *COUNTERS)):
        return f"checkpoint in {folder} was written by an older wattlm; delete that folder to start afresh"
    expected = _trainable_shapes(model)
    saved = {name: tuple(tensor.shape) for name, tensor in state["trainable"].items()}
    for name in sorted(set(saved) | set(expected)):
        if saved.get(name) != expected.get(name):
            return (f"checkpoint in {folder} does not match the model (e.g. {name}: checkpoint "
                    f"{saved.get(name, 'absent')}, model {expected.get(name, 'absent')}); "
                    "delete that folder to start the run afresh")
    return None


def load_fsdp_checkpoint(folder: Path | None, model, optimizer, dist) -> dict | None:
    """Collective: restore the sharded model, optimizer and this process's RNG from rank 0's file.

    Rank 0 alone reads and checks the file (other nodes need not see it); its verdict goes to every
    process first, so a bad checkpoint stops all of them with the same one-line error instead of leaving
    the others waiting in a broadcast. Returns the counters, or None when there is no checkpoint."""
    import torch
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    state, problem = None, None
    if dist.is_main and folder is not None and (folder / CHECKPOINT).exists():
        try:
            state = read_checkpoint(folder)
            problem = _mismatch(state, model, folder)
        except WattError as err:
            problem = str(err)
    found, problem = dist.from_main((state is not None, problem))
    if problem:
        raise WattError(problem)
    if not found:
        return None
    # strict=False: the file holds the trainable tensors only; frozen weights keep their loaded values.
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, strict=False)
    set_model_state_dict(model, state["trainable"] if dist.is_main else {}, options=options)
    set_optimizer_state_dict(model, optimizer, state["optimizer"] if dist.is_main else {}, options=options)
    counters = dist.from_main({key: state[key] for key in COUNTERS} if dist.is_main else None)
    rng = counters.pop("torch_rng")
    # Each process continues its own dropout stream; with a different process count the streams differ.
    torch.set_rng_state(rng[dist.rank] if dist.rank < len(rng) else rng[0])
    return counters
