# sessrec-course: the two commands a newcomer runs are `make course` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sessrec-installed
# Quiet pip, minus the harmless "Location ... is ignored" lines some pip configs print.
PIP_QUIET := 2>&1 | { grep -v -e '^WARNING: Location' || true; }
# Keep tool caches inside the checkout: hermetic runs, nothing written under ~ that CI depends on.
export MPLCONFIGDIR := $(CURDIR)/build/.cache/matplotlib
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONWARNINGS ?= ignore::DeprecationWarning

.PHONY: help setup data course test lint lab clean bench bench-peers

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements/cpu.txt pyproject.toml
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "installing the pinned course environment (requirements/cpu.txt) into $(VENV) ..."
	$(BIN)/python -m pip install -q -r requirements/cpu.txt $(PIP_QUIET)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e . $(PIP_QUIET)
	$(BIN)/python -m pip check
	@touch $@

setup: $(STAMP)  ## create .venv and install the pinned environment (skipped when up to date)

data: setup  ## generate the embedded default dataset for the active profile (reused when present)
	$(BIN)/python -m sessrec_course data

course: data  ## run every notebook headless into build/ (+HTML) and print the summary table
	$(BIN)/python -m sessrec_course course

lint: setup  ## ruff
	$(BIN)/ruff check .

test: export SESSREC_PROFILE := ci
test: setup  ## ruff + unit tests + every notebook (nbval, "ci" profile); prints the wall time
	@start=$$(date +%s); \
	$(BIN)/ruff check . && \
	$(BIN)/python -m pytest --nbval-lax -p no:cacheprovider $(PYTEST_ARGS); status=$$?; \
	echo "make test wall time: $$(( $$(date +%s) - start )) s on $$(nproc) cores (exit $$status)"; exit $$status

MERLIN_VENV ?= .venv-merlin
MERLIN_STAMP := $(MERLIN_VENV)/.merlin-installed
BENCH_ARGS ?=
PEERS_ARGS ?= --events 300000

bench: setup  ## quality benchmark on the shared splits (baselines + torch models, ~1 h/split on 2 cores) -> docs/benchmarks.md
	$(BIN)/python -m sessrec_course.bench -v quality --markdown docs/benchmarks.md $(BENCH_ARGS)

$(MERLIN_STAMP): requirements/merlin.txt requirements/merlin-constraints.txt
	@test -x $(MERLIN_VENV)/bin/python || $(PYTHON) -m venv $(MERLIN_VENV)
	$(MERLIN_VENV)/bin/python -m pip install -q -r requirements/merlin.txt -c requirements/merlin-constraints.txt $(PIP_QUIET)
	$(MERLIN_VENV)/bin/python -m pip check
	@touch $@

bench-peers: setup $(MERLIN_STAMP)  ## course vs NVTabular CPU + Transformers4Rec XLNet on the same events -> docs/benchmarks.md
	$(BIN)/python -m sessrec_course.bench -v peers --markdown docs/benchmarks.md $(PEERS_ARGS)

lab: setup  ## JupyterLab on 127.0.0.1 in notebooks/
	$(BIN)/jupyter lab --ip 127.0.0.1 --no-browser --notebook-dir notebooks

clean:  ## remove build outputs and generated data (keeps .venv)
	rm -rf build data/generated
