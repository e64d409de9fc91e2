"""Loading Hugging Face models and tokenizers from local folders, the same way in every stage."""

from __future__ import annotations

from pathlib import Path


def quiet_transformers() -> None:
    """Our progress bars report the stage; transformers' per-load bars and advisories only add noise."""
    import os

    from transformers.utils import logging

    # The GGUF de-quantiser uses plain tqdm, which only this switch silences.
    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.disable_progress_bar()
    logging.set_verbosity_error()


def load_tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    quiet_transformers()
    return AutoTokenizer.from_pretrained(model_dir)


def load_causal_lm(model_dir: Path, train: bool = False):
    """fp32 weights (bf16 is applied by autocast where it helps); eval mode unless training."""
    import torch
    from transformers import AutoModelForCausalLM

    quiet_transformers()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    return model.train() if train else model.eval()
