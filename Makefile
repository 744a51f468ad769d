# The two commands: `make demo` and `make test`. Both set everything up first (scripts/setup.sh).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export STAGEFLOW_HOME ?= $(CURDIR)/.stageflow

.PHONY: setup demo test test-unit test-integration bench up down status clean

setup:
	@bash scripts/setup.sh

demo: setup  ## everything set up, then the main job on the embedded platform
	$(VENV)/bin/stageflow demo

test: setup  ## everything set up, then the whole suite (starts its own platform)
	$(PY) -m pytest -q tests

test-unit: setup
	$(PY) -m pytest -q tests/unit

test-integration: setup
	$(PY) -m pytest -q tests/integration

bench: setup  ## benchmarks (not part of `make test`); figures go to docs/benchmarks.md
	$(PY) -m benchmarks

up: setup
	$(VENV)/bin/stageflow up

down:
	$(VENV)/bin/stageflow down

status:
	$(VENV)/bin/stageflow status

clean: down
	rm -rf $(STAGEFLOW_HOME)
