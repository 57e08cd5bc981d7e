# Deskstream — `make run` and `make test` work on a fresh machine: they install what is missing.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench bench-sla bench-mail chaos install system-deps clean docs

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || PYTHON=python3; \
	  test -x $(BIN)/python || $${PYTHON:-python3} -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests drive for real: installs PostgreSQL and dovecot when missing, makes a
# cluster if there is none, trusts loopback TCP for the fixtures, and starts PostgreSQL.
system-deps:
	@bash scripts/system-deps.sh

run: install
	$(BIN)/deskstream run --host 127.0.0.1 --port 8080 --data-dir var

lint: install
	$(BIN)/ruff check libs services tests $(wildcard bench)
	$(BIN)/ruff format --check libs services tests $(wildcard bench)

typecheck: install
	$(BIN)/mypy

test: install system-deps lint typecheck
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: install system-deps
	$(BIN)/python -m bench

# SLA state at 1M open tickets, restart-to-ready, overdue delay, filters/s (--quick: smoke run).
bench-sla: install system-deps
	$(BIN)/python -m bench.sla

# Email intake (deskstream pipe, in-process, tickets.email) and a 100 KB attachment, each next to
# the plain JSON ticket rate of the same run (--quick: smoke run).
bench-mail: install system-deps
	$(BIN)/python -m bench.mail
	$(BIN)/python -m bench.logsize
	$(BIN)/python -m bench.mimecost

# The fault catalogue (RELIABILITY.md F1-F14) against the distributed mode, 3 rounds each
# (--quick: one round, as in `make test`); the table lands in bench/results/chaos.json.
chaos: install system-deps
	$(BIN)/python -m bench.chaos

docs: install
	$(BIN)/python -m services.docs

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
