# minimalt — the two commands a new user needs are `make demo` and `make test`.
# Each installs what it needs (a .venv from PyPI, node_modules from npm) and is fast when done.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMPS := .make-stamps

.PHONY: install demo test test-py test-js bench lint clean

install: $(STAMPS)/venv $(STAMPS)/node

$(STAMPS)/venv: pyproject.toml
	@mkdir -p $(STAMPS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	@touch $@

$(STAMPS)/node: package.json package-lock.json
	@mkdir -p $(STAMPS)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

demo: install
	$(PY) -m minimalt demo

test: install test-py test-js

test-py: $(STAMPS)/venv
	$(PY) -m pytest -q

test-js: $(STAMPS)/node $(STAMPS)/venv
	MINIMALT_PYTHON=$(abspath $(PY)) npx jest --ci

bench: install
	$(PY) bench/run.py

lint: $(STAMPS)/venv
	$(PY) -m ruff check core uvbridge tests bench examples
	$(PY) -m mypy

clean:
	rm -rf $(VENV) node_modules $(STAMPS)
