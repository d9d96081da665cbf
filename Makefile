# Two entry points for a fresh machine: `make repro` and `make test`.
# EMOTION6=/path/to/Emotion6.zip (or an extracted Emotion6 folder) uses a local copy.
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
# Stage commands call `python`: make it the venv's.
export PATH := $(BIN):$(PATH)
export EMOTION6

.PHONY: install repro test bench

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

bench: install
	$(BIN)/python benchmarks/loading.py
