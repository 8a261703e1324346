# The two commands of the README, and the tools around them. Only Python 3.11+, git and make needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast fuzz bench soak lint format check-config clean

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

## make fuzz: the fuzzers of tests/fuzz/ (every webhook, the ECE callback, the agent API, the REST API
## under schemathesis, slow and oversized clients) with Hypothesis's long "fuzz" profile; `make test`
## runs the same tests briefly ("ci"). FUZZ_TIMEOUT bounds each test, in seconds.
FUZZ_TIMEOUT ?= 3600
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -n $(TEST_PROCESSES) --timeout $(FUZZ_TIMEOUT) tests/fuzz $(PYTEST_ARGS)

## make bench: benchmarks against the real stack; tables go to bench/results/
bench: $(STAMP)
	$(BIN)/python -m bench

## make soak: the chaos soak (bench/soak/): SOAK_MESSAGES messages on all five channels both ways, ECE and
## Hybrid Chat, while workers, the listener, a web process and Redis are killed -9 and ECE and the
## providers fail; report in bench/results/soak-<timestamp>.md, exit 1 on any loss, duplicate or reorder.
## Other knobs (SOAK_DURABILITY=everysec|always|replicated, SOAK_FAULTS=full|light|none, ...): bench/soak/run.py
SOAK_MESSAGES ?= 10000
soak: $(STAMP)
	SOAK_MESSAGES=$(SOAK_MESSAGES) $(BIN)/python -m bench soak

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
