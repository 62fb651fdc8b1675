# SpectralEarth — the two commands of the quick start are `make demo` and `make test`.
# Set-up is idempotent: the virtualenv is (re)installed only when pyproject.toml changes.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
OUT    ?= out/demo

.PHONY: setup demo test test-slow test-all bench lint clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed, found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@

setup: $(STAMP)

## The end-to-end demo on synthesized scenes: demo scenes -> curate -> train -> evaluate.
demo: setup
	$(BIN)/spectralearth demo --out $(OUT)

## The default test suite (slow tests excluded).
test: setup
	$(BIN)/python -m pytest

## Only the slow tests (kill/resume loops, DDP, larger end-to-end runs).
test-slow: setup
	$(BIN)/python -m pytest -m slow

test-all: setup
	$(BIN)/python -m pytest -m ''

## Ratio benchmarks; each prints a table.
bench: $(DEVSTAMP)
	$(BIN)/python benchmarks/colocate.py
	$(BIN)/python benchmarks/tile.py
	$(BIN)/python benchmarks/model.py
	$(BIN)/python benchmarks/loader.py

$(DEVSTAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

## ruff over the whole tree; mypy over the public API of the release, engine, grid and sources
## packages (the files are listed in pyproject.toml, [tool.mypy]).
lint: $(DEVSTAMP)
	$(BIN)/ruff check spectralearth_data spectralearth_model flows tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf out .pytest_cache
