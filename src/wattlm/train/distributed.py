"""Training across processes and GPUs: the recipe's `train.distributed` section and FSDP sharding.

    train:
      distributed: {strategy: ddp}                                  # every process holds the whole model
      distributed: {strategy: fsdp, reshard_after_forward: true}    # decoder layers sharded across processes

`ddp` is the data parallelism `dist.py` has always done (our own bucketed gradient all-reduce, since the
fused loss bypasses a DDP wrapper's forward hooks); a recipe without the section trains exactly so.
`fsdp` shards every decoder layer with torch's FSDP2 (`fully_shard`): a layer's weights are gathered for
its forward and backward and its gradients reduce-scattered, so each process holds 1/N of the layers'
weights, gradients and optimizer state. Embeddings, final norm and head stay whole on every process (the
fused loss reads the head weight directly) and their gradients go through the ddp all-reduce. Checkpoints
of an fsdp run are gathered to rank 0 and written as one file (fsdp_checkpoint.py).

The process group is gloo on CPU-only machines (as before) and gloo for CPU tensors + NCCL for CUDA
tensors when torch sees a GPU; torchrun (or accelerate launch, Slurm srun, a Kubernetes Job) starts the
processes: docs/scale-out.md.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from wattlm.errors import WattError


class DistributedSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy: Literal["ddp", "fsdp"] = Field(
        "ddp", description="ddp: a whole model per process, gradients all-reduced (models that fit one device); "
        "fsdp: decoder layers sharded across processes (models that do not).")
    reshard_after_forward: bool = Field(
        True, description="fsdp: free a layer's gathered weights after its forward and gather them again for "
        "backward (least memory); false keeps them until backward (one all-gather less per layer and step).")


def process_group_backend() -> str:
    """gloo where there is no GPU (the CPU path as it always was); with one, NCCL reduces CUDA tensors and
    gloo the few CPU numbers the loop sums (token counts, losses)."""
    import torch

    return "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"


def uses_fsdp(config) -> bool:
    return config.distributed is not None and config.distributed.strategy == "fsdp"


def shard_model(model, config, dist) -> list:
    """FSDP: shard each decoder layer across the processes; returns the trainable parameters to optimize
    (sharded ones are new DTensor objects). Without fsdp, the trainable parameters as they were."""
    if not uses_fsdp(config):
        return [p for p in model.parameters() if p.requires_grad]
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    from wattlm.shared.lm import backbone_and_head

    backbone, _, _ = backbone_and_head(model)
    layers = getattr(backbone, "layers", None)
    if layers is None:
        raise WattError(f"train.distributed.strategy fsdp: {type(backbone).__name__} has no .layers to shard")
    device_type = next(model.parameters()).device.type
    mesh = init_device_mesh(device_type, (dist.world,))
    for layer in layers:
        fully_shard(layer, mesh=mesh, reshard_after_forward=config.distributed.reshard_after_forward)
    return [p for p in model.parameters() if p.requires_grad]


def reduce_and_clip(params: list, config, dist, max_norm: float = 1.0) -> None:
    """Sum gradients over processes and clip their global norm to `max_norm`.

    ddp: the loop's two calls as they always were. fsdp: sharded gradients were reduce-scattered in
    backward; whole parameters are all-reduced, and the norm adds each shard's part once."""
    import torch

    if not uses_fsdp(config):
        dist.sum_gradients(params)
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        return
    from torch.distributed.tensor import DTensor

    sharded = [p for p in params if isinstance(p, DTensor)]
    whole = [p for p in params if not isinstance(p, DTensor)]
    # The loop divides the summed loss by the global scored-token count itself, so it wants gradients summed
    # over processes; FSDP's reduce-scatter averages them. (A divide factor of 1 would make it sum, but as a
    # PREMUL_SUM reduction, which gloo lacks.)
    for p in sharded:
        if p.grad is not None:
            p.grad.mul_(dist.world)
    dist.sum_gradients(whole)
    shard_sq = sum(float(p.grad.to_local().float().pow(2).sum()) for p in sharded if p.grad is not None)
    whole_sq = sum(float(p.grad.float().pow(2).sum()) for p in whole if p.grad is not None)
    total = math.sqrt(dist.sum([shard_sq])[0] + whole_sq)
    scale = max_norm / (total + 1e-6)
    if scale < 1.0:
        for p in params:
            if p.grad is not None:
                p.grad.mul_(scale)


def gather_whole_weights(model, config) -> None:
    """FSDP, once training is done: every process gathers each sharded weight and puts it back as a plain
    parameter, so rank 0 can merge LoRA and save the model as usual. A no-op without fsdp."""
    if not uses_fsdp(config):
        return
    import torch
    from torch.distributed.tensor import DTensor

    for module in model.modules():
        for name, param in list(module._parameters.items()):
            if isinstance(param, DTensor):  # full_tensor() is collective: all processes walk the same order
                whole = param.full_tensor().detach()
                module._parameters[name] = torch.nn.Parameter(whole, requires_grad=param.requires_grad)
