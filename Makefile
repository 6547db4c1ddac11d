# All set-up happens here: a fresh machine needs only python3, make and the package registries.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# What `make demo` needs: the core package alone (file and SQLite sinks, the DAG runner).
CORE_STAMP := $(VENV)/.core-installed

.PHONY: install demo test lint typecheck bench dist clean

$(STAMP): pyproject.toml tests/support/pyproject.toml examples/custom_sink/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e '.[all,dev]' -e tests/support -e examples/custom_sink
	touch $(STAMP)

$(CORE_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --disable-pip-version-check -e .
	touch $(CORE_STAMP)

install: $(STAMP)

demo: $(CORE_STAMP)
	$(BIN)/python examples/demo.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

dist: $(STAMP)
	$(BIN)/python -m build --wheel --outdir dist .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
