# tradewatch — every target does its own setup; `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: help install run test lint bench bench-soak clean

help:
	@echo "make run         set up .venv and run the worker (embedded Redis, console alerts by default)"
	@echo "make test        set up .venv and run the test suite"
	@echo "make lint        ruff and mypy"
	@echo "make bench       benchmarks (table on stdout, BENCHMARKS.md)"
	@echo "make bench-soak  30-minute soak (not in CI)"
	@echo "make install     only set up .venv"
	@echo "make clean       remove .venv and caches; the worker's state in var/ is kept"

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "tradewatch needs Python 3.11 or later")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

run: install
	$(BIN)/tradewatch run

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check service tests bench
	$(BIN)/mypy

$(BENCH_STAMP): $(STAMP)
	@$(BIN)/python -m pip install -q -e '.[dev,bench]'
	@touch $@

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

bench-soak: $(BENCH_STAMP)
	$(BIN)/python -m bench.soak

# var/ (the embedded Redis: seen items, pending alerts, dead letters) is kept on purpose:
# removing it re-alerts recent items and loses what waits for delivery. `rm -rf var` does that.
clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
