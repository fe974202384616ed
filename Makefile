# Set-up and main jobs. Everything installs into .venv; torch goes in first, pinned, so pip
# never pulls multi-GB CUDA wheels onto a CPU machine. Override: make TORCH='torch==2.5.1' test
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/pip install -q "$(TORCH)"
	touch $@

$(VENV)/.base: pyproject.toml $(VENV)/.torch
	$(BIN)/pip install -q -e ".[lora,gguf]"
	touch $@

$(VENV)/.test: pyproject.toml $(VENV)/.base
	$(BIN)/pip install -q -e ".[test]"
	touch $@

demo: $(VENV)/.base
	$(BIN)/probe demo

# pytest exits 5 when no test ran: that is a failure here, as any non-zero exit.
test: $(VENV)/.test
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(VENV)/.base
	$(BIN)/python -m bench.core --write bench/results.md

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
