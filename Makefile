# The two commands of the README: `make demo` (a running hub) and `make test` (the suite), and
# `make test-fast`, the inner loop: every test not marked `slow`.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8080
DATA ?= .fnhub
# pytest-xdist workers: `auto` is one per CPU. Each test file runs in one worker, so a module's
# hub, database and bucket are set up once (`make test JOBS=0` runs serially).
JOBS ?= auto
PYTEST := $(VENV)/bin/pytest -n $(JOBS) --dist loadfile

.PHONY: setup demo test test-fast lint mutation clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

# `make demo PORT=9000` serves elsewhere; the hub prints where it answers and where its admin
# token is, and Ctrl-C stops it. Logs as text lines here (JSON in production).
demo: setup
	FNHUB_SERVER_LOG_FORMAT=$${FNHUB_SERVER_LOG_FORMAT:-text} \
	    $(VENV)/bin/hub serve --data-dir $(DATA) --host 127.0.0.1 --port $(PORT) --seed-catalog

# ruff, and the layer contracts of pyproject.toml (import-linter; see tools/check_layers.py)
lint: setup
	$(VENV)/bin/ruff check .
	$(PY) tools/check_layers.py

test: lint
	$(PYTEST)

test-fast: setup
	$(PYTEST) -m "not slow"

# Mutation testing of the security-critical core (signing, packaging, uri, versions, trust) with
# its focused tests; not part of `make test` (minutes on an idle machine). `make mutation
# MODULES=core/versions.py` runs one module; survivors accepted as message-only or equivalent are
# listed in tests/mutation-survivors.txt.
mutation: setup
	VENV=$(abspath $(VENV)) tools/mutation.sh $(MODULES)

clean:
	rm -rf $(VENV) .fnhub .pytest_cache .ruff_cache
