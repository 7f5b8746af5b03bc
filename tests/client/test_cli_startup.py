"""`hub --version` and `hub --help` import no command and none of the heavy libraries the
commands use (the timing itself is bench/cli_startup.py's, not a test's)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("httpx", "docker", "pydantic", "fastapi", "rich", "yaml", "fnhub.api_client",
         "fnhub.core.api_models", "fnhub.pipeline", "fnhub.install", "fnhub.cli.registry",
         "fnhub.cli.pipelines", "fnhub.hub.commands.serve", "fnhub.hub.commands.admin")


@pytest.mark.parametrize("argv", [["--version"], ["--help"]])
def test_startup_loads_no_command(argv: list[str]) -> None:
    code = ("import json, sys\nfrom fnhub.cli.main import main\n"
            f"code = main({argv!r})\n"
            "print(json.dumps([code, sorted(k for k, v in sys.modules.items() if v)]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    exit_code, modules = json.loads(proc.stdout.splitlines()[-1])
    assert exit_code == 0
    loaded = [m for m in modules if m.split(".")[0] in HEAVY or m in HEAVY
              or any(m.startswith(h + ".") for h in HEAVY)]
    assert loaded == [], loaded


def test_a_command_loads_only_what_it_uses() -> None:
    """`hub init` (no hub, no images) never imports the docker SDK or httpx's client."""
    code = ("import sys\nfrom fnhub.cli.main import main\nmain(['init', '--help'])\n"
            "print('docker' in sys.modules, 'fnhub.pipeline' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert proc.stdout.splitlines()[-1] == "False False"
