#!/bin/sh
# `make mutation`: mutmut 3 over the security-critical core (DESIGN §4-§5) with its focused tests.
# mutmut names mutants after the file path (minus a leading `src/`) and must import the mutated
# copy, but this repository maps the package `fnhub` to the folder client/. So the run happens in
# a staging tree build/mutation/ where the code sits at src/fnhub/ (the hub stays reachable through
# the editable install); results stay there (`cd build/mutation && mutmut results`).
# Usage: tools/mutation.sh [MODULE...]   e.g. tools/mutation.sh core/versions.py
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
STAGE=$ROOT/build/mutation
MODULES=${*:-core/signing.py core/files.py core/packaging/* core/uri.py core/versions.py trust.py}

rm -rf "$STAGE"
mkdir -p "$STAGE/src" "$STAGE/tests/client"
cp -r "$ROOT/client" "$STAGE/src/fnhub"
cp -r "$ROOT/tests/core" "$STAGE/tests/core"
cp "$ROOT/tests/client/test_trust.py" "$STAGE/tests/client/"
touch "$STAGE/tests/__init__.py"
printf '"""The focused tests need no fixtures of the full suite (no hub, no services)."""\n' \
    > "$STAGE/tests/conftest.py"
rm -f "$STAGE/tests/core/test_featureset.py" "$STAGE/tests/core/test_manifest.py"

only=""
for module in $MODULES; do only="$only\"src/fnhub/$module\", "; done
cat > "$STAGE/pyproject.toml" <<TOML
[tool.mutmut]
source_paths = ["src"]
only_mutate = [$only]
pytest_add_cli_args_test_selection = ["tests/core", "tests/client/test_trust.py"]
pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:randomly", "-q"]

[tool.pytest.ini_options]
addopts = "-p no:cacheprovider"
TOML

cd "$STAGE"
PATH="$VENV/bin:$PATH" "$VENV/bin/mutmut" run --max-children "${MUTATION_JOBS:-2}"
"$VENV/bin/mutmut" results --all true > results.txt || true
grep -c ': killed' results.txt | sed 's/^/killed: /'
grep -v ': killed' results.txt | sed 's/^/not killed: /'
