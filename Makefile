# Two entry points for a fresh machine: `make repro` and `make test`.
# EMOTION6=/path/to/Emotion6.zip (or an extracted Emotion6 folder) uses a local copy.
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
# Stage commands call `python`: make it the venv's.
export PATH := $(BIN):$(PATH)
# EMOTION6=/path/to/Emotion6.zip (or an extracted Emotion6 folder): the download stage reads that
# local copy instead of downloading data.source's URL; params.yaml stays as committed.
ifdef EMOTION6
export EMOTION6 := $(abspath $(EMOTION6))
endif

.PHONY: install repro test test-fast lint bench table features-table audit lock cluster plots show

install: $(VENV)/.installed

# Every dependency at the version requirements.lock pins, then the project itself.
$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# Regenerate requirements.lock from pyproject.toml (pip-tools in a throwaway venv).
lock:
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet pip-tools
	.lock-venv/bin/pip-compile --quiet --extra test --strip-extras --no-emit-index-url --no-emit-find-links \
		--no-emit-trusted-host --output-file requirements.lock pyproject.toml
	rm -rf .lock-venv

repro: install
	$(BIN)/dvc repro

# Every chart of dvc.yaml's `plots` into dvc_plots/index.html (git-ignored), drawn without a network:
# `dvc plots show` with the Vega libraries inline (docs/plots.md). ARGS go to `dvc plots show`.
plots: install
	$(BIN)/python -m ewmtcnn.plots $(ARGS)

# Every test: tests/unit, then tests/integration (DVC projects, the real archive named by EMOTION6,
# and Slurm). The Slurm tests need a controller: unless one answers, slurm/cluster.sh installs and
# starts a single-node cluster on this machine (as root).
test: install cluster
	$(BIN)/pytest

# The unit tests alone (under 2 minutes): no DVC project, real archive, Slurm or root needed.
test-fast: install
	$(BIN)/pytest tests/unit

cluster:
	scontrol ping >/dev/null 2>&1 || { slurm/cluster.sh install && slurm/cluster.sh start; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The prior variants of the tables A to E of docs/results.md (ewmtcnn.study.design.GRIDS: 41 DVC experiments, JOBS
# in parallel), then the tables and plots/variants.png from `dvc exp show`. Commit nothing in
# between: `dvc exp show` lists the experiments of the current commit only. The queue's workers
# inherit EMOTION6.
# SCHEDULER=slurm: the same experiments as a Slurm array job, then the tables as a dependent job
# (python -m ewmtcnn.cluster grid; sbatch options in slurm.yaml; docs/machines.md).
JOBS ?= 1
SCHEDULER ?= local
table: install
ifeq ($(SCHEDULER),slurm)
	$(BIN)/python -m ewmtcnn.cluster grid
else
	$(BIN)/python -m ewmtcnn.study.queue --jobs $(JOBS)
	$(BIN)/python -m ewmtcnn.study.table
endif

# Tables F, H, I and J: the frozen-feature configurations of the offline backbones against the default's, with
# six and seven emotions, and the frozen wheel against none on Lite2 and with seven emotions
# (ewmtcnn.study.design.FEATURE_GRIDS, 12 DVC experiments), then their blocks of docs/results.md; the same rules
# as `table`.
features-table: install
	$(BIN)/python -m ewmtcnn.study.queue --tables FHIJ --jobs $(JOBS)
	$(BIN)/python -m ewmtcnn.study.table --tables FHIJ

# Every figure of the compared tables (A, B, D, G, F, H, I and J) recomputed from the experiments' predictions (and the
# classic stage's, for G) by a script that imports nothing of ewmtcnn (audit/recompute.py); exit status 1 on any
# mismatch. Run it after `make table`, before committing: it reads the experiments of the current commit, or those of
# AUDIT_REV=<commit>; AUDIT_TABLES=<letters> checks those tables alone (tables made on different commits:
# once per commit, as docs/results.md says).
# RESULTS: the file that holds the tables.
RESULTS ?= docs/results.md
AUDIT_REV ?=
AUDIT_TABLES ?=
audit: install
	$(BIN)/python audit/recompute.py $(RESULTS) $(if $(AUDIT_REV),--rev $(AUDIT_REV)) $(if $(AUDIT_TABLES),--tables $(AUDIT_TABLES))

# A readable `dvc exp show`: each experiment's varied params and its headline held-out means
# (python -m ewmtcnn.study.show; docs/pipeline.md). SHOW: more `dvc exp show` options, e.g. SHOW="--sort-by kl".
SHOW ?=
show: install
	$(BIN)/python -m ewmtcnn.study.show $(SHOW)

bench: install
	$(BIN)/python benchmarks/loading.py
