"""Registering foundation models and turning any registered model into a trainable HF folder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from wattlm.cache import content_key, files_key
from wattlm.errors import NotFound, WattError
from wattlm.models.packaged import PACKAGED, materialize
from wattlm.registry import Artifact, Registry
from wattlm.registry_locks import held_lock


def add_model(registry: Registry, source: str, name: str | None = None, tier: str = "foundation") -> Artifact:
    """Register a local HF folder, a GGUF file, or a packaged model name as a model artifact."""
    if source in PACKAGED:
        return _add_packaged(registry, source, name or source)
    path = Path(source).expanduser()
    if not path.exists():
        raise NotFound(f"model source not found: {source} (expected a HF folder, a .gguf file or one of "
                       f"{sorted(PACKAGED)})")
    if path.is_file():
        if path.suffix != ".gguf":
            raise WattError(f"{path}: expected a .gguf file or a Hugging Face model folder")
        _check_gguf_magic(path)
        return registry.register(
            "model", name or path.stem, path=path.parent, tier=tier, format="gguf",
            meta={"file": path.name, "source": str(path.resolve())}, cache_key=files_key("model", [path]),
        )
    if not (path / "config.json").exists():
        raise WattError(f"{path}: a Hugging Face model folder needs a config.json")
    return registry.register(
        "model", name or path.name, path=path, tier=tier, format="hf", meta={"source": str(path.resolve())},
        cache_key=files_key("model", [path]),
    )


def _check_gguf_magic(path: Path) -> None:
    with open(path, "rb") as fh:
        if fh.read(4) != b"GGUF":
            raise WattError(f"{path}: not a GGUF file (bad magic bytes)")


def _add_packaged(registry: Registry, packaged: str, name: str) -> Artifact:
    spec = PACKAGED[packaged]
    with registry.staging() as staged:
        folder, file = materialize(packaged, staged)
        meta = {"file": file, "packaged": packaged, "package": spec.package, "description": spec.description}
        # Keyed by the file's bytes, as a model added by path: the same weights are the same parent.
        key = files_key("model", [folder / file])
        if folder == staged:
            return registry.register("model", name, staged=staged, tier="foundation", format="gguf", meta=meta,
                                     cache_key=key)
        return registry.register("model", name, path=folder, tier="foundation", format="gguf", meta=meta,
                                 cache_key=key)


def resolve_model(registry: Registry, ref: str) -> Artifact:
    """A model by id or name; a packaged model name is registered on first use."""
    try:
        return registry.get(ref, kind="model")
    except NotFound:
        if ref not in PACKAGED:
            raise NotFound(f"unknown model {ref!r}: not in the registry and not a packaged model "
                           f"({', '.join(sorted(PACKAGED))}); add one with `watt models add`") from None
    # Two runs on one workspace both meeting the packaged model first: one registers, the other finds it.
    with registry.key_lock(f"packaged-{ref}"):
        try:
            return registry.get(ref, kind="model")
        except NotFound:
            return add_model(registry, ref)


def gguf_path(model: Artifact) -> Path:
    if model.format != "gguf":
        raise WattError(f"model {model.name} ({model.id}) is not a GGUF model")
    return model.path / model.meta["file"]


def model_cache_root() -> Path | None:
    """Where GGUF models dequantised to HF folders are kept for every workspace on this machine:
    `$WATT_MODEL_CACHE`, else `~/.cache/wattlm/hf`; `WATT_MODEL_CACHE=off` keeps them per workspace."""
    setting = os.environ.get("WATT_MODEL_CACHE", "").strip()
    if setting.lower() == "off":
        return None
    return Path(setting).expanduser() if setting else Path.home() / ".cache" / "wattlm" / "hf"


def hf_dir(registry: Registry, model: Artifact) -> Path:
    """A Hugging Face folder for `model`; a GGUF model is dequantised once per machine and cached.

    transformers loads GGUF with `gguf_file=` (dequantised to fp32) but still marks the model as
    quantized, which makes `save_pretrained` and training refuse it; clearing the quantizer makes it an
    ordinary fp32 model. Dequantising Gemma 3 270M takes ~35 s on 2 cores, most of it the gguf package
    reading the 262k-entry vocabulary field by field, so the folder is kept under `model_cache_root()`
    by the GGUF's content key (any workspace with the same file reuses it; `make setup` makes the packaged
    model's), or under `cache/hf/<id>` of the workspace (written to a temp folder, renamed).
    """
    if model.format == "hf":
        return model.path
    local = registry.home / "cache" / "hf" / model.id
    if (local / "config.json").exists():  # made by a workspace before the shared cache existed
        return local
    root = model_cache_root()
    cached = root / content_key(model) if root is not None else local
    if (cached / "config.json").exists():
        return cached
    # Two runs converting the same model queue here; the second finds the first's folder.
    lock = cached.parent / f"{cached.name}.lock" if root is not None else registry.home / "locks" / f"hf-{model.id}.lock"
    cached.parent.mkdir(parents=True, exist_ok=True)
    with held_lock(lock):
        if not (cached / "config.json").exists():
            _dequantise(model, cached)
    return cached


def _dequantise(model: Artifact, cached: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from wattlm.models.hf import quiet_transformers

    quiet_transformers()
    src = gguf_path(model)
    if not src.exists():
        raise NotFound(f"GGUF file of model {model.name} is missing: {src}")
    tokenizer = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    lm = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
    lm.hf_quantizer = None
    lm.is_quantized = False
    if hasattr(lm.config, "quantization_config"):
        del lm.config.quantization_config
    cached.parent.mkdir(parents=True, exist_ok=True)
    for stale in cached.parent.glob(f"{cached.name}.tmp-*"):  # left by an interrupted conversion
        shutil.rmtree(stale, ignore_errors=True)
    tmp = cached.with_name(f"{cached.name}.tmp-{os.getpid()}")
    lm.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "wattlm_source.json").write_text(json.dumps({"gguf": str(src), "model_id": model.id}))
    os.replace(tmp, cached)
