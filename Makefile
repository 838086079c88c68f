# The targets the README and .ci/run use. Everything runs from .venv at the repository root.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PLANSTREAM := $(BIN)/planstream

.PHONY: setup test test-unit test-integration lint schemas demo stack-up stack-down clean bench bench-quick \
	chaos chaos-short

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

# The fault suite (docs/reliability.md): real workers killed, paused, starved, fed bad input, the
# invariants I1-I9 checked offline after each fault. `chaos` is the full profile and writes
# reports/reliability.md; `chaos-short` is the short-lease profile CI runs (about 20 minutes).
# Either writes its report even when a test fails, then exits with pytest's status. A socket the
# in-process fault proxy leaves unclosed at teardown is not a verdict (known leak, T26): such
# unraisable warnings are not turned into failures here.
CHAOS_TESTS := tests/chaos/test_harness.py tests/chaos/test_checkers.py tests/chaos/test_baseline.py \
	tests/chaos/test_inputs.py tests/chaos/test_model.py tests/chaos/test_dedup.py \
	tests/chaos/test_crashes.py tests/chaos/test_storage.py tests/chaos/test_secrets.py \
	tests/chaos/test_replay.py tests/chaos/test_infra.py
CHAOS_RUN = mkdir -p .planstream/chaos && rm -f .planstream/chaos/results-$(1).jsonl && \
	PLANSTREAM_CHAOS_PROFILE=$(1) PLANSTREAM_CHAOS_RESULTS=.planstream/chaos/results-$(1).jsonl \
	$(BIN)/pytest $(CHAOS_TESTS) -m chaos --timeout 3600 -p no:cacheprovider \
	-W ignore::pytest.PytestUnraisableExceptionWarning; status=$$?; \
	$(BIN)/python -m planstream.dev.chaos.report --profile $(1) \
	--results .planstream/chaos/results-$(1).jsonl --out $(2); exit $$status

chaos: setup
	$(PLANSTREAM) stack up
	$(call CHAOS_RUN,full,reports/reliability.md)

chaos-short: setup
	$(PLANSTREAM) stack up
	$(call CHAOS_RUN,short,.planstream/chaos/reliability-short.md)

stack-up: setup
	$(PLANSTREAM) stack up

stack-down: setup
	$(PLANSTREAM) stack down

clean:
	rm -rf $(VENV) build *.egg-info
