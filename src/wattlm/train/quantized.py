"""QLoRA: LoRA trained over base weights held in 8 or 4 bits (the recipe's `train.quantize_base`).

    train:
      quantize_base: 4bit   # none (default): fp32 base weights | 8bit: LLM.int8 | 4bit: NF4, double-quantized

A 7B model's frozen weights take 28 GB in fp32 and ~4 GB in NF4, so the base fits one consumer GPU and
only the small LoRA matrices train (in full precision). The quantization is bitsandbytes', reached
through transformers' `BitsAndBytesConfig`; peft's `prepare_model_for_kbit_training` freezes the base and
keeps norms in fp32. It changes the numbers (the forward sees rounded weights), so a recipe that sets it
gets its own cache key; `none` stays out of the key, and recipes without the field keep theirs.

The trained adapter is merged into the *full-precision* base before saving (`full_precision_adapter`):
merging into the 4-bit weights would round the merged model again, and llama.cpp export reads fp32.

bitsandbytes supports CUDA everywhere and, depending on its version, some CPU kernels; the first use
probes the training device with a tiny quantized layer and fails in one line when it cannot run there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from wattlm.errors import WattError

QuantizeSetting = Literal["none", "8bit", "4bit"]


def check_quantize_base(setting: QuantizeSetting, lora, distributed) -> QuantizeSetting:
    """The recipe-level rules (run when the config is parsed): quantized bases train LoRA only, not under FSDP."""
    if setting == "none":
        return setting
    if lora is None:
        raise ValueError(f"quantize_base {setting} trains LoRA adapters over frozen quantized weights; "
                         "set train.lora (a full fine-tune cannot update 8/4-bit weights) or quantize_base: none")
    if distributed is not None and distributed.strategy == "fsdp":
        raise ValueError(f"quantize_base {setting} is not supported with distributed.strategy fsdp; use ddp "
                         "(each process holds the quantized model) or quantize_base: none")
    return setting


def require_bitsandbytes(setting: QuantizeSetting, device) -> None:
    """A one-line `WattError` unless the installed bitsandbytes runs `setting` layers on `device`."""
    need = f"train.quantize_base: {setting} needs bitsandbytes with {device.type} support"
    try:
        import bitsandbytes as bnb
    except ImportError as error:
        raise WattError(f"{need}: {error} (pip install bitsandbytes, or quantize_base: none)") from None
    import torch

    try:  # one tiny layer through the same kernels the model will use
        if setting == "4bit":
            layer = bnb.nn.Linear4bit(64, 64, bias=False, compute_dtype=torch.float32, quant_type="nf4")
        else:
            layer = bnb.nn.Linear8bitLt(64, 64, bias=False, has_fp16_weights=False)
        layer = layer.to(device)
        layer(torch.zeros(2, 64, device=device))
    except Exception as error:  # noqa: BLE001 -- any backend failure means: not on this device
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise WattError(f"{need}; bitsandbytes {getattr(bnb, '__version__', '?')} failed there ({first_line}): "
                        "train on a CUDA GPU or set quantize_base: none") from None


def load_quantized_lm(model_dir: Path, setting: QuantizeSetting, device, bf16: bool, gradient_checkpointing: bool):
    """The causal LM of `model_dir` with its linear layers in `setting` bits on `device`, frozen and
    prepared for adapter training (norms in fp32; the head stays full precision, as transformers keeps it)."""
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from wattlm.models.hf import quiet_transformers
    from wattlm.train.device import autocast_dtype

    require_bitsandbytes(setting, device)
    compute = autocast_dtype(device, bf16) or torch.float32  # the dtype the dequantized matmuls run in
    if setting == "4bit":
        quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                          bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute)
    else:
        quantization = BitsAndBytesConfig(load_in_8bit=True)
    quiet_transformers()
    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=quantization,
                                                     dtype=torch.float32, device_map={"": str(device)})
    except (ImportError, RuntimeError, ValueError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise WattError(f"train.quantize_base: {setting}: transformers could not load {model_dir.name} "
                        f"quantized on {device} ({first_line})") from None
    # Gradient checkpointing stays the loop's (non-reentrant) setting; here only the input-grad hook it needs.
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing,
                                           gradient_checkpointing_kwargs={"use_reentrant": False})


def full_precision_adapter(model, model_dir: Path):
    """The trained LoRA of `model` (a peft model over quantized weights) over the fp32 base of
    `model_dir`, on the CPU, ready for the loop's usual merge and save."""
    import copy

    from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

    from wattlm.models.hf import load_causal_lm

    trained = {name: tensor.detach().float().cpu() for name, tensor in get_peft_model_state_dict(model).items()}
    whole = get_peft_model(load_causal_lm(model_dir), copy.deepcopy(model.peft_config["default"]))
    set_peft_model_state_dict(whole, trained)
    return whole
