# The two commands of the README, plus the pieces they are made of.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PYSPARK_PYTHON := $(abspath $(BIN)/python)

.PHONY: setup demo test bench wheel clean

$(BIN)/casemix: setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

setup: $(BIN)/casemix

## 1: set up and run the whole pipeline on the embedded default (local Spark, delta-rs, local MLflow)
demo: setup
	$(BIN)/casemix pipeline

## 2: set up and run the tests
test: setup
	$(BIN)/python -m pytest

wheel: setup
	$(BIN)/pip wheel --no-deps -w dist .

clean:
	rm -rf data dist build lib/*.egg-info .pytest_cache
