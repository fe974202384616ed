# Set-up and main jobs. Everything installs into .venv; torch goes in first, pinned, so pip
# never pulls multi-GB CUDA wheels onto a CPU machine. Override: make TORCH='torch==2.5.1' test
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test bench bench-full bench-venvs bench-quick clean

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

# The peers `make bench` compares probe with, each in its own venv under bench/.venvs (never
# probe's dependencies); CPU torch first, as above. A failed install leaves no stamp: the
# bench reports the error from bench/.venvs/NAME.log and the next `make bench` tries again.
MINICONS ?= minicons==0.3.39
INSEQ ?= inseq==0.7.1
BENCH_VENVS := bench/.venvs
PEER_minicons = $(MINICONS)
PEER_inseq = $(INSEQ)

$(BENCH_VENVS)/%/.installed:
	@mkdir -p $(BENCH_VENVS)
	@echo "bench: installing $(PEER_$*) into $(BENCH_VENVS)/$* (log: $(BENCH_VENVS)/$*.log)"
	@rm -rf $(BENCH_VENVS)/$* && \
	( $(PYTHON) -m venv $(BENCH_VENVS)/$* && $(BENCH_VENVS)/$*/bin/pip install --upgrade pip && \
	  $(BENCH_VENVS)/$*/bin/pip install "$(TORCH)" && $(BENCH_VENVS)/$*/bin/pip install "$(PEER_$*)" ) \
	  > $(BENCH_VENVS)/$*.log 2>&1 && touch $@ || echo "bench: $* failed to install, see $(BENCH_VENVS)/$*.log"

bench-venvs: $(BENCH_VENVS)/minicons/.installed $(BENCH_VENVS)/inseq/.installed

# probe vs the limits and the peers; writes bench/results.md (at most 15 minutes on 2 idle cores:
# adaptive repeats, each peer on the workloads it can do, memory in its own runs on W5 and W6).
bench: $(VENV)/.base bench-venvs
	$(BIN)/python -m bench --write bench/results.md

# The old run: 3 rounds of everything, every peer variant, memory on every workload (about an hour).
bench-full: $(VENV)/.base bench-venvs
	$(BIN)/python -m bench --full --write bench/results.md

# probe vs the limits only, printed (no peers' venvs needed).
bench-quick: $(VENV)/.base
	$(BIN)/python -m bench --no-peers

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
