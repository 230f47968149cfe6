# minimalt — the two commands a new user needs are `make demo` and `make test`.
# Each installs what it needs (a .venv from PyPI, node_modules from npm) and is fast when done.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMPS := .make-stamps

.PHONY: install demo test test-py test-py-compiled test-js test-js-compiled compiled bench \
	bench-latency conformance lint clean

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

test: install test-py test-py-compiled test-js test-js-compiled

test-py: $(STAMPS)/venv
	$(PY) -m pytest -q

# The protocol core compiled by mypyc into .compiled/ (a copy of the package: the checkout
# itself never holds a compiled module). Use it with PYTHONPATH=.compiled.
COMPILED := .compiled
PY_SOURCES := $(shell find core uvbridge -name '*.py' 2>/dev/null)

$(STAMPS)/compile-tools: $(STAMPS)/venv
	$(PY) -m pip install --quiet -e '.[compile]'
	@touch $@

$(COMPILED)/minimalt-compiled.txt: $(STAMPS)/compile-tools $(PY_SOURCES)
	$(PY) -m minimalt.compile --out $(COMPILED)

compiled: $(COMPILED)/minimalt-compiled.txt

# The same suite again on the compiled core.
test-py-compiled: compiled
	PYTHONPATH=$(abspath $(COMPILED)) $(PY) -c 'import minimalt.proto as p, sys; \
		sys.exit(0 if p.compiled() else "the compiled core did not load")'
	PYTHONPATH=$(abspath $(COMPILED)) $(PY) -m pytest -q -p no:cacheprovider

test-js: $(STAMPS)/node $(STAMPS)/venv
	MINIMALT_PYTHON=$(abspath $(PY)) npx jest --ci

# The Node module on the compiled core (its bridge process inherits PYTHONPATH).
test-js-compiled: $(STAMPS)/node compiled
	PYTHONPATH=$(abspath $(COMPILED)) MINIMALT_PYTHON=$(abspath $(PY)) npx jest --ci

bench: install compiled
	$(PY) bench/run.py

# Latency to the first response byte against TCP, TLS and QUIC: bench/latency.json,
# docs/latency.md and docs/latency.svg (network namespaces when root, else userspace relays).
bench-latency: $(STAMPS)/venv
	$(PY) bench/latency_bench.py

# The conformance cases, full profile (minutes): conformance/results.json and results.md.
# (`make test` runs their fast profile.)
conformance: $(STAMPS)/venv
	$(PY) -m tests.conformance --profile full

$(STAMPS)/dev: $(STAMPS)/venv
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

lint: $(STAMPS)/dev
	$(PY) -m ruff check core uvbridge tests bench examples
	$(PY) -m ruff format --check core uvbridge tests bench examples
	$(PY) -m mypy

clean:
	rm -rf $(VENV) node_modules $(STAMPS) $(COMPILED)
