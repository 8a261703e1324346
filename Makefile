# The two commands of the README, and the tools around them. Only Python 3.11+, git and make needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast bench lint format check-config clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

## make run: the whole stack on an embedded Redis with the sandbox simulators (Ctrl-C stops it)
run: $(STAMP)
	$(BIN)/python -m connector run --sandbox

## make test: the whole suite (real Redis, real worker processes, simulators on loopback), two
## pytest processes side by side (TEST_PROCESSES=0 runs in one)
TEST_PROCESSES ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) $(PYTEST_ARGS)

## make test-fast: the unit tests only (no worker processes, simulators or browser), under a minute
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) -m "not e2e" $(PYTEST_ARGS)

## make bench: benchmarks against the real stack; tables go to bench/results/
bench: $(STAMP)
	$(BIN)/python -m bench

## make lint: ruff (style, the import bans of pyproject.toml), import cycles, strict types
lint: $(STAMP)
	$(BIN)/ruff check connector tests bench
	$(BIN)/ruff format --check connector tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix connector tests bench
	$(BIN)/ruff format connector tests bench

check-config: $(STAMP)
	$(BIN)/python -m connector check-config

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis test-output
