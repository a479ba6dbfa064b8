# Everything a developer needs from a fresh clone: `make run` and `make test`.
.DEFAULT_GOAL := all

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check
RUNTIME := $(VENV)/.installed-runtime
STAMP := $(VENV)/.installed-dev
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: install run test test-fast lint typecheck format bench docs all clean

# `make run` needs only what running needs; tests, lint and benchmarks add the dev
# tools and the Dask extra.
$(RUNTIME): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -e .
	touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(PIP) install -e '.[dev,dask]'
	touch $(STAMP)

install: $(STAMP)

run: $(RUNTIME)
	$(BIN)/asyncbatch run data/batch_config.json -j 4 -o data/batch_report.json

test: $(STAMP)
	$(BIN)/python -m pytest

# The inner loop: everything but the tests marked slow (under a minute).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

lint: $(STAMP)
	$(BIN)/ruff check asyncbatch tests bench
	$(BIN)/ruff format --check asyncbatch tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format asyncbatch tests bench
	$(BIN)/ruff check --fix asyncbatch tests bench

# The full run takes many minutes; it saves bench/results.json, from which the tables
# of README.md and docs/benchmarks.md are then regenerated. GNU parallel and hyperfine
# are system packages: without them their rows are left out.
bench: $(STAMP)
	@command -v parallel >/dev/null && command -v hyperfine >/dev/null || \
		echo "note: GNU parallel or hyperfine is missing: sudo apt-get install -y parallel hyperfine"
	$(BIN)/python bench/run.py
	$(BIN)/python bench/run.py --write-docs

# The reference in docs/ as a static site in site/ (MkDocs, Material theme); --strict
# fails on a broken link or anchor.
$(DOCS_STAMP): $(RUNTIME)
	$(PIP) install -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(BIN)/mkdocs build --strict -d site

all: lint test

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
