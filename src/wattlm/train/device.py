"""Where training runs: the device a recipe asks for (`train.device: auto | cpu | cuda`), its autocast
dtype and gradient checkpointing. The loop calls these; on a CPU machine they reproduce what it always did.

    device: auto   # CUDA when torch sees a GPU, else the CPU (the default: one recipe, laptop to cluster)
    device: cuda   # a GPU or a one-line error
    device: cpu    # the CPU even on a GPU machine
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from typing import Literal

from wattlm.errors import WattError

DeviceSetting = Literal["auto", "cpu", "cuda"]


def resolve_device(setting: DeviceSetting = "auto"):
    """The torch.device to train on. Under torchrun each process takes the GPU of its LOCAL_RANK."""
    import torch

    if setting == "cpu" or (setting == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, but no GPU is visible"
        raise WattError(f"train.device is cuda but torch {torch.__version__} has {build}: "
                        "use device: auto or cpu, or run on a GPU machine")
    index = int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count()
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def autocast_dtype(device, bf16: bool):
    """The dtype matmuls autocast to, or None for fp32.

    bf16 on the CPU (as before) and on GPUs that compute in it (Ampere and later). Older GPUs train in
    fp32: their fp16 would need loss scaling, which the loop does not do, and bf16 there is emulated."""
    import torch

    if not bf16:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16


def autocast(device, bf16: bool):
    """The autocast context of a training step on `device`."""
    import torch

    dtype = autocast_dtype(device, bf16)
    if device.type == "cpu":  # exactly the loop's CPU call before devices existed (bf16 off: disabled autocast)
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    if dtype is None:
        return nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def to_device(batch, device):
    """A batch (a tensor or a tuple of tensors, as methods build them) on `device`; unchanged on the CPU."""
    if device.type == "cpu":
        return batch
    if isinstance(batch, tuple):
        return tuple(to_device(part, device) for part in batch)
    return batch.to(device, non_blocking=True) if hasattr(batch, "to") else batch


def enable_gradient_checkpointing(model) -> None:
    """Recompute each decoder layer's activations in backward instead of keeping them: activation memory
    falls from all layers' to about one layer's, for roughly one more forward pass of compute.

    Non-reentrant checkpointing: it needs no input that requires grad, so it works with frozen embeddings
    under LoRA, and with the fused loss, which calls the decoder stack directly."""
    from wattlm.shared.lm import unwrap_model

    causal_lm = unwrap_model(model)
    if not getattr(causal_lm, "supports_gradient_checkpointing", False):
        raise WattError(f"train.gradient_checkpointing: {type(causal_lm).__name__} does not support it")
    causal_lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    causal_lm.config.use_cache = False  # a KV cache is useless in training and conflicts with recomputation
