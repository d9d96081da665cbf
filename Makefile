# Two entry points for a fresh machine: `make repro` and `make test`.
# EMOTION6=/path/to/Emotion6.zip (or an extracted Emotion6 folder) uses a local copy.
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
# Stage commands call `python`: make it the venv's.
export PATH := $(BIN):$(PATH)
export EMOTION6

.PHONY: install repro test bench table

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

repro: install
ifdef EMOTION6
	$(BIN)/dvc exp run -S 'data.source=$(abspath $(EMOTION6))'
else
	$(BIN)/dvc repro
endif

test: install
	$(BIN)/pytest

# The reimplementation's 13 variants as DVC experiments (JOBS in parallel), then the README
# table and plots/variants.png from `dvc exp show`. Commit nothing in between: `dvc exp show`
# lists the experiments of the current commit only.
JOBS ?= 1
table: install
	$(BIN)/python -m ewmtcnn.grid $(if $(EMOTION6),--source '$(abspath $(EMOTION6))') --jobs $(JOBS)
	$(BIN)/python -m ewmtcnn.table

bench: install
	$(BIN)/python benchmarks/loading.py
