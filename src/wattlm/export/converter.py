"""Locating llama.cpp's HF -> GGUF converter.

`convert_hf_to_gguf.py` (with its `conversion/` package and `gguf-py`) is the reference converter,
but llama-cpp-python installs only the library; the scripts live in its source archive under
`vendor/llama.cpp/`. `ensure_converter()` extracts them from that archive, once, at set-up time
(`python -m wattlm.export.converter`), into `<venv>/share/wattlm/llama.cpp`. We do not vendor them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

from wattlm.errors import WattError

_MEMBERS = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/", "gguf-py/")


def converter_dir() -> Path:
    return Path(os.environ.get("WATT_LLAMA_CPP_DIR", Path(sys.prefix) / "share" / "wattlm" / "llama.cpp"))


def converter_script() -> Path:
    script = converter_dir() / "convert_hf_to_gguf.py"
    if not script.exists():
        raise WattError(
            f"llama.cpp converter not found at {script}; run `python -m wattlm.export.converter` "
            "(part of `make setup`) or set WATT_LLAMA_CPP_DIR to a llama.cpp checkout"
        )
    return script


def ensure_converter() -> Path:
    """Extract the converter from the llama-cpp-python source archive matching the installed version."""
    target = converter_dir()
    if (target / "convert_hf_to_gguf.py").exists():
        return target
    wanted = version("llama-cpp-python")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
             f"llama-cpp-python=={wanted}", "-d", tmp],
            check=True,
        )
        archive = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent))
        prefix = f"{archive.name.removesuffix('.tar.gz')}/vendor/llama.cpp/"
        with tarfile.open(archive) as tar:
            members = []
            for member in tar.getmembers():
                rel = member.name.removeprefix(prefix)
                if member.name.startswith(prefix) and rel.startswith(_MEMBERS) and member.isfile():
                    member.name = rel
                    members.append(member)
            tar.extractall(staging, members=members, filter="data")
    os.replace(staging, target)
    return target


if __name__ == "__main__":
    print(ensure_converter())
