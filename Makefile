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

.PHONY: setup demo test test-fast lint mutation clean bench bench-tools bench-features

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

# Side-by-side benchmarks against the peers (bench/README.md); not part of the tests. Each
# script prints its table and exits 1 when it misses its goal; `make bench` runs them all and
# fails at the end if any missed. The peers' tools come from Debian and PyPI.
BENCHES := cli_startup resolve search install oci_peer
RESULTS ?= .bench-results

bench-tools:
	@for tool in wrk docker-registry skopeo; do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

bench: setup bench-tools
	@mkdir -p $(RESULTS); failed=""; \
	for b in $(BENCHES); do $(PY) bench/$$b.py --json $(RESULTS)/$$b.json || failed="$$failed $$b"; done; \
	if [ -n "$$failed" ]; then echo "goals missed:$$failed"; exit 1; fi

bench-features: setup bench-tools
	@mkdir -p $(RESULTS)
	$(PY) bench/features.py --json $(RESULTS)/features.json

# Mutation testing of the security-critical core (signing, packaging, uri, versions, trust) with
# its focused tests; not part of `make test` (minutes on an idle machine). `make mutation
# MODULES=core/versions.py` runs one module; survivors accepted as message-only or equivalent are
# listed in tests/mutation-survivors.txt.
mutation: setup
	VENV=$(abspath $(VENV)) tools/mutation.sh $(MODULES)

clean:
	rm -rf $(VENV) .fnhub .pytest_cache .ruff_cache
