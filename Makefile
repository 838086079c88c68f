# The targets the README and .ci/run use. Everything runs from .venv at the repository root.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PLANSTREAM := $(BIN)/planstream

.PHONY: setup test test-unit test-integration lint schemas demo stack-up stack-down clean bench bench-quick \
	bench-profile chaos chaos-short tools chart-files dashboards screenshots

# helm, for the chart checks of `make lint`: built from source through the Go module proxy into
# Go's bin folder when it is missing (once, about 3 minutes; docs/deploy.md). HELM=... uses another.
HELM_VERSION := v3.22.0
GO_BIN_DIR := $(or $(shell go env GOBIN 2>/dev/null),$(addsuffix /bin,$(firstword $(subst :, ,$(shell go env GOPATH 2>/dev/null)))),$(HOME)/go/bin)
HELM ?= $(GO_BIN_DIR)/helm

setup: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,local]'
	touch $@

# The whole suite: starts the local stack if it is not running (reusing it if it is); helm
# renders the chart in tests/dev/test_deploy.py.
test: setup tools
	$(PLANSTREAM) stack up
	$(BIN)/pytest

test-unit: setup
	$(BIN)/pytest tests/unit tests/contract

lint: setup tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m planstream.dev.deploycheck --helm $(HELM)

tools: $(HELM)

$(HELM):
	@command -v go >/dev/null 2>&1 || { echo "make tools: Go (1.26+, which helm $(HELM_VERSION) needs) is required to build helm"; exit 1; }
	GOFLAGS=-mod=mod go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

# The chart's copies of deploy/prometheus/*.rules.yml and deploy/grafana/dashboards/*.json, and
# its values.schema.json (from planstream/settings.py and the service list): run after changing
# any of them; `make lint` fails while they drift.
chart-files: setup
	$(BIN)/python -m planstream.dev.deploycheck sync

schemas: setup
	$(PLANSTREAM) schemas write

# deploy/grafana/dashboards/*.json from planstream/dev/dashboards/ (a test fails while they drift;
# then run `make chart-files` for the chart's copies).
dashboards: setup
	$(BIN)/python -m planstream.dev.dashboards write

demo: setup
	$(PLANSTREAM) demo

# docs/console-queue.png and docs/console-run.png: the operator console on the local stack after
# `make demo` (which leaves blocked runs), in the distribution's headless Chromium (docs/console.md).
screenshots: setup
	$(BIN)/python -m planstream.dev.console_shots --out docs

# Benchmarks against raw baselines on the local stack (docs/benchmarks.md); reports/ gets both
# reports. bench-quick takes under 5 minutes, the full profile about half an hour.
bench: setup
	$(PLANSTREAM) bench

bench-quick: setup
	$(PLANSTREAM) bench --quick

# Where the CPU of a step-0 run goes: the quick step-throughput figure, then one more batch under
# py-spy; a profile per process and summary.md in .planstream/bench/profiles/<run tag>/.
bench-profile: setup
	$(PLANSTREAM) bench --quick --only pipeline --sampling-profile

# The fault suite (docs/reliability.md): real workers killed, paused, starved, fed bad input, the
# invariants I1-I9 checked offline after each fault. `chaos` is the full profile and writes
# reports/reliability.md; `chaos-short` is the short-lease profile CI runs (about 20 minutes).
# Either writes its report even when a test fails, then exits with pytest's status. A socket the
# in-process fault proxy leaves unclosed at teardown is not a verdict (known leak, T26): such
# unraisable warnings are not turned into failures here.
CHAOS_TESTS := tests/chaos/test_harness.py tests/chaos/test_checkers.py tests/chaos/test_baseline.py \
	tests/chaos/test_inputs.py tests/chaos/test_injection.py tests/chaos/test_abuse.py \
	tests/chaos/test_model.py \
	tests/chaos/test_dedup.py tests/chaos/test_crashes.py tests/chaos/test_storage.py \
	tests/chaos/test_signed_urls.py tests/chaos/test_secrets.py \
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
