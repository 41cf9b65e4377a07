# tradewatch — every target does its own setup; `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: install run test lint bench bench-soak clean

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

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
