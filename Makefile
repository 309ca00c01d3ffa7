# The two quick-start commands: `make demo` and `make test`.
# Each does its own set-up on a fresh machine: virtual environment, install, Kafka jars.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint typecheck unit bench openapi kafka-start kafka-stop clean

$(BIN)/.installed: pyproject.toml setup.py src/border_exchange/_native.c
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "border-exchange needs Python 3.11 or newer (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/border-exchange demo

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest -m 'not kafka'

test: lint typecheck
	$(BIN)/pytest --durations=15
	$(BIN)/pytest -m 'not kafka' -q --clock-shift=730d
	BX_NO_NATIVE=1 $(BIN)/pytest tests/unit -m 'not kafka' -q  # the pure-Python reference, as without C

bench: setup
	$(BIN)/python bench/run_all.py

openapi: setup  # regenerate the committed OpenAPI document of the HTTP gateway
	$(BIN)/border-exchange gateway openapi --out docs/openapi.json

kafka-start: setup
	$(BIN)/border-exchange dev kafka start

kafka-stop: setup
	$(BIN)/border-exchange dev kafka stop

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
