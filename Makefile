# The two commands that matter: `make demo` and `make test`. Both build and reuse .venv/.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export ESCPOS_CAPABILITIES_PICKLE_DIR := $(CURDIR)/$(VENV)/escpos-cache

.PHONY: demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	mkdir -p $(ESCPOS_CAPABILITIES_PICKLE_DIR)
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m demo

test: lint typecheck unit

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# Two workers: the suite mostly waits (brokers restarting, processes killed, timeouts), so the
# 2-core machine runs it in about half the time. Every test owns its ports, files and database.
# python-escpos writes its capabilities pickle on first import: made here, once, not by two
# workers at the same time (one read the other's half-written file).
unit: $(STAMP)
	$(PY) -c "import escpos.capabilities"
	$(PY) -m pytest -q -n 2

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
