# The two commands of the README: `make demo` (a running hub) and `make test` (the suite).
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8080
DATA ?= .fnhub

.PHONY: setup demo test lint clean

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

lint: setup
	$(VENV)/bin/ruff check .

test: lint
	$(VENV)/bin/pytest

clean:
	rm -rf $(VENV) .fnhub .pytest_cache .ruff_cache
