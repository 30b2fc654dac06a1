# Fresh clone: `make demo` runs the pipeline on the embedded Kafka + Redis,
# `make test` runs the unit and integration tests, `make stress` the slow fault drills.
# All create .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
RZ     := $(VENV)/bin/rendezvous
# Test processes of make test (pytest-xdist), each with its own broker and Redis.
TEST_PROCESSES ?= 2

.PHONY: demo up down test stress unit lint bench train clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(RZ) demo

up: $(VENV)/.installed
	$(RZ) up

down: $(VENV)/.installed
	$(RZ) local down

test: $(VENV)/.installed
	$(PY) -m pytest -q -n $(TEST_PROCESSES) --dist worksteal tests/unit tests/integration

stress: $(VENV)/.installed
	$(PY) -m pytest -q tests/stress

unit: $(VENV)/.installed
	$(PY) -m pytest -q tests/unit

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check rendezvous tests bench models
	$(VENV)/bin/mypy rendezvous
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mkdocs build --strict

bench: $(VENV)/.installed
	$(PY) bench/run.py

train: $(VENV)/.installed
	$(PY) models/train.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .import_linter_cache .hypothesis
