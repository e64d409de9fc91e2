"""`python -m wattlm.models.prepare [NAME...]`: dequantise packaged models into the shared model cache.

`make setup` runs it for the packaged default, so the first recipe on a fresh machine (and every new
workspace after it) finds Gemma 3 270M's HF folder ready instead of spending ~35 s converting the GGUF
(models/store.py `hf_dir`). Without the shared cache (`WATT_MODEL_CACHE=off`) there is nothing to do.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from wattlm.errors import WattError
from wattlm.models.packaged import DEFAULT_FOUNDATION, PACKAGED
from wattlm.models.store import hf_dir, model_cache_root, resolve_model
from wattlm.registry import Registry

DEFAULT = (DEFAULT_FOUNDATION,)


def prepare(names: tuple[str, ...] | list[str] = DEFAULT) -> list[Path]:
    """The shared HF folder of each packaged model, made when missing."""
    if model_cache_root() is None:
        return []
    unknown = [n for n in names if n not in PACKAGED]
    if unknown:
        raise WattError(f"not a packaged model: {', '.join(unknown)} (packaged: {', '.join(sorted(PACKAGED))})")
    with tempfile.TemporaryDirectory(prefix="watt-prepare-") as home:  # a throw-away registry to resolve in
        registry = Registry(Path(home))
        return [hf_dir(registry, resolve_model(registry, name)) for name in names]


if __name__ == "__main__":
    for folder in prepare(sys.argv[1:] or DEFAULT):
        print(folder)
