# The targets the README and .ci/run use. Everything runs from .venv at the repository root.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PLANSTREAM := $(BIN)/planstream

.PHONY: setup test test-unit test-integration lint schemas demo stack-up stack-down clean bench bench-quick

setup: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,local]'
	touch $@

# The whole suite: starts the local stack if it is not running (reusing it if it is).
test: setup
	$(PLANSTREAM) stack up
	$(BIN)/pytest

test-unit: setup
	$(BIN)/pytest tests/unit tests/contract

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

schemas: setup
	$(PLANSTREAM) schemas write

demo: setup
	$(PLANSTREAM) demo

# Benchmarks against raw baselines on the local stack (docs/benchmarks.md); reports/ gets both
# reports. bench-quick takes under 5 minutes, the full profile about half an hour.
bench: setup
	$(PLANSTREAM) bench

bench-quick: setup
	$(PLANSTREAM) bench --quick

stack-up: setup
	$(PLANSTREAM) stack up

stack-down: setup
	$(PLANSTREAM) stack down

clean:
	rm -rf $(VENV) build *.egg-info
