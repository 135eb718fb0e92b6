.PHONY: install run test lint bench bench-smoke bench-api clean

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
	$(PY) bench/run.py --out bench/results

bench-smoke: install
	$(PY) bench/run.py --smoke --out bench/results/smoke

bench-api: install
	$(PY) -m bench.bench_api

clean:
	rm -rf ledger-demo .pytest_cache .mypy_cache .ruff_cache .hypothesis

.PHONY: soak
# Ten minutes of mixed read and write load on `ledger serve --workers 2` (SQLite and
# PostgreSQL): no errors, no memory growth, the chain verifies after (docs/THREAT-MODEL.md E).
soak: install
	LEDGER_SOAK_SECONDS=$${LEDGER_SOAK_SECONDS:-600} $(VENV)/bin/pytest -s -p no:cacheprovider tests/security/test_soak.py
