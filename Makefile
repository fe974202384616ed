# Set-up and main jobs. Everything installs into .venv; torch goes in first, pinned, so pip
# never pulls multi-GB CUDA wheels onto a CPU machine. Override: make TORCH='torch==2.5.1' test
# Every other package comes at the version in requirements/lock.txt (the set the suite passed
# with); `make upgrade` refreshes that file on purpose and runs the suite on the new set.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements/lock.txt
PYTEST_ARGS ?=

.PHONY: demo demo-verify test screenshots upgrade bench bench-full bench-venvs bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/pip install -q "$(TORCH)"
	touch $@

$(VENV)/.base: pyproject.toml $(LOCK) $(VENV)/.torch
	$(BIN)/pip install -q -c $(LOCK) -e ".[lora,gguf,train]"
	touch $@

$(VENV)/.test: pyproject.toml $(LOCK) $(VENV)/.base
	$(BIN)/pip install -q -c $(LOCK) -e ".[test]"
	touch $@

demo: $(VENV)/.base
	$(BIN)/probe demo

# The demo with its attribution verified by retraining: trains the 3 retrains it needs (without the
# top 10, without 10 random examples, twice) into ~/.cache/probe/retrains/ once; `make demo` uses them after.
demo-verify: $(VENV)/.base
	$(BIN)/probe demo --verify

# Screenshots of every view (light and dark JupyterLab theme) and of the report (1440 and 800 px),
# then of every live widget in a real JupyterLab on localhost (tiny models, both themes), into
# docs/screenshots/, which the README links: Debian's chromium via Playwright, offline.
screenshots: $(VENV)/.test
	$(BIN)/python tests/widgets/gallery.py docs/screenshots

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

# Resolve the newest releases that pyproject.toml allows in a scratch venv, write them to the
# lock, rebuild .venv from it and run the whole suite: drift is found here, on purpose.
UPGRADE_VENV := .venv-upgrade
upgrade:
	rm -rf $(UPGRADE_VENV)
	$(PYTHON) -m venv $(UPGRADE_VENV)
	$(UPGRADE_VENV)/bin/pip install -q --upgrade pip
	$(UPGRADE_VENV)/bin/pip install -q "$(TORCH)"
	$(UPGRADE_VENV)/bin/pip install -q --upgrade -e ".[test]"
	{ sed -n '1,2p' $(LOCK); echo "# Python $$($(UPGRADE_VENV)/bin/python -c 'import platform; print(platform.python_version())'), $$(date -u +%Y-%m-%d)"; \
	  $(UPGRADE_VENV)/bin/pip freeze --exclude-editable | grep -viE '^(torch|token-probe)([=@ ]|$$)'; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf $(UPGRADE_VENV) $(VENV)
	$(MAKE) test
	@echo "upgrade: $(LOCK) refreshed and the suite passed on it; review 'git diff $(LOCK)' and commit it"

clean:
	rm -rf $(VENV) $(UPGRADE_VENV) build *.egg-info .pytest_cache .hypothesis
