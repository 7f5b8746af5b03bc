"""Acceptance: every shell and Python snippet of README.md runs as written, in order, in one
shell session (as a reader following along would), against a demo hub seeded with the catalog.

The test fills what a reader fills: the demo hub's address (a free port instead of 8080) and
`<alice's token>` (what the line marked "prints alice's token" printed). `make demo` and
`make test` run elsewhere (tests/e2e/test_demo.py, and CI itself).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ENV_VARS, ROOT, start_hub

pytestmark = pytest.mark.slow

FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
RUN_ELSEWHERE = {"make demo": "tests/e2e/test_demo.py", "make test": ".ci/run"}
DEMO_URL = "http://127.0.0.1:8080"
TOKEN_PLACEHOLDER = "<alice's token>"
TOKEN_SOURCE = "# prints alice's token"


NAMED_FILE = re.compile(r"`\./([\w./-]+)`:\s*\Z")


def readme_snippets() -> list[tuple[str, str]]:
    """(language, code) of every fenced block, in order. A yaml block is a file the sentence
    before it names (`./driver-stats/featureset.yaml`:), so a reader saves it there: as a
    shell snippet writing that file."""
    text = (ROOT / "README.md").read_text()
    snippets = []
    for m in FENCE.finditer(text):
        if m[1] != "yaml":
            snippets.append((m[1], m[2]))
            continue
        named = NAMED_FILE.search(text[:m.start()])
        assert named, f"the yaml block at offset {m.start()} does not follow a `./path`: line"
        path = named[1]
        snippets.append(("sh", f"mkdir -p \"$(dirname {path})\"\n"
                               f"cat > {path} <<'FNHUB_README_FILE'\n{m[2]}FNHUB_README_FILE\n"))
    return snippets


def _as_script(snippets: list[tuple[str, str]], url: str) -> str:
    lines = ["set -euo pipefail"]
    for number, (language, code) in enumerate(snippets, 1):
        code = code.replace(DEMO_URL, url)
        lines.append(f"echo '### README snippet {number}' >&2")
        if language == "python":
            lines += ["python - <<'FNHUB_README_PYTHON'", code.rstrip("\n"),
                      "FNHUB_README_PYTHON"]
            continue
        for line in code.rstrip("\n").splitlines():
            if TOKEN_SOURCE in line:  # keep what it prints, for the placeholder below
                command, _, comment = line.partition("#")
                line = f'{command.rstrip()} | tee "$README_TOKEN_FILE"  #{comment}'
            lines.append(line.replace(TOKEN_PLACEHOLDER, '$(tail -n 1 "$README_TOKEN_FILE")'))
    return "\n".join(lines) + "\necho '### README done' >&2\n"


def test_every_snippet_is_a_shell_or_python_block() -> None:
    snippets = readme_snippets()
    assert {language for language, _ in snippets} == {"sh", "python"}
    assert [code.strip() for _, code in snippets[:2]] == list(RUN_ELSEWHERE)
    assert sum(TOKEN_PLACEHOLDER in code for _, code in snippets) == 1
    assert sum(TOKEN_SOURCE in code for _, code in snippets) == 1


@pytest.mark.timeout(1800)  # a demo hub, the catalog, a pipeline that trains a model
def test_the_readme_runs_as_written(tmp_path: Path) -> None:
    snippets = [(lang, code) for lang, code in readme_snippets()
                if code.strip() not in RUN_ELSEWHERE]
    work = tmp_path / "fnhub"  # stands for the repository folder the README is read in
    work.mkdir()
    (work / ".venv").symlink_to(Path(sys.executable).parent.parent)
    hub = start_hub(work / ".fnhub", seed=True)
    try:
        env = {k: v for k, v in os.environ.items()
               if k not in ENV_VARS and not k.startswith(("XDG_", "VIRTUAL_ENV"))}
        env.update(HOME=str(tmp_path / "home"), README_TOKEN_FILE=str(tmp_path / "token"),
                   COLUMNS="200")
        script = _as_script(snippets, hub.url)
        (tmp_path / "readme.sh").write_text(script)
        proc = subprocess.run(["bash", str(tmp_path / "readme.sh")], cwd=work, env=env,
                              capture_output=True, text=True, timeout=1500, check=False)
    finally:
        hub.stop()
    report = f"{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
    assert proc.returncode == 0, report
    assert f"### README snippet {len(snippets)}" in proc.stderr and "### README done" in (
        proc.stderr), report
    assert "Traceback" not in proc.stdout + proc.stderr, report
    # What the snippets promise, checked where they left it.
    assert (work / "wine-run" / "outputs" / "wine.csv").is_file()
    assert "n_dropped" in proc.stdout and "alice/my_fn" in proc.stdout
    assert (tmp_path / "home" / ".config" / "fnhub" / "keys" / "default.key").is_file()
    assert (work / "fnhub.lock").is_file() and (work / "restored" / "hub.db").is_file()
    assert "recorded in ./fnhub.lock" in proc.stdout
