.PHONY: install run test lint bench bench-api clean

VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/bin/ledger: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[dev]'
	@touch $@

install: $(VENV)/bin/ledger

run: install
	$(VENV)/bin/ledger serve --demo

test: install
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: install
	$(PY) bench/bench_core.py --json bench/results/core.json

bench-api: install
	$(PY) -m bench.bench_api

clean:
	rm -rf ledger-demo .pytest_cache .mypy_cache .ruff_cache .hypothesis
