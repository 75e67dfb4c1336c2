# Entry points: `make demo` (the multi-worker demo), `make test` (the whole
# suite), `make serve` (the same stack to browse). Each installs what it needs
# into .venv first.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo serve test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev,metrics,bench]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	PYTHONPATH=example $(PY) -m demo run

serve: install
	PYTHONPATH=example $(PY) -m demo serve

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy djust_dist

test: lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: install
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache .demo
