# One entry point for the dev loop. `make demo` and `make test` install what they need first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install demo test test-fast lint bench clean

$(VENV)/.installed: pyproject.toml setup.py plugins/lsdb-layernorms/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU wheel first: a bare `torch` requirement could pull a multi-GB CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	# the example third-party plugin, so its entry point is exercised by the tests
	$(PY) -m pip install -q --no-deps -e plugins/lsdb-layernorms
	touch $@

install: $(VENV)/.installed

demo: install
	PATH="$(abspath $(VENV))/bin:$$PATH" bash scripts/demo.sh

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check lsdb tests scripts plugins migrations
	$(VENV)/bin/mypy lsdb scripts --ignore-missing-imports
	# the architecture's layer contracts ([tool.importlinter] in pyproject.toml; docs/architecture.md)
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache demo-out
