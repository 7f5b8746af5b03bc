"""The layer contracts of DESIGN §1 hold, cover every client module, and catch a wrong import."""

from __future__ import annotations

import subprocess
import sys

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECK = [sys.executable, str(ROOT / "tools" / "check_layers.py")]


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {c["id"]: c for c in config["tool"]["importlinter"]["contracts"]}


def test_every_client_module_is_in_the_contracts() -> None:
    """A new client module left out of the contracts would escape them."""
    on_disk = {f"fnhub.{p.stem}" for p in (ROOT / "client").iterdir()
               if p.name != "core" and not p.name.startswith("__")
               and (p.suffix == ".py" or (p / "__init__.py").is_file())}
    contracts = _contracts()
    assert set(contracts["client"]["source_modules"]) == on_disk
    assert set(contracts["hub"]["forbidden_modules"]) == on_disk
    assert set(contracts["core"]["forbidden_modules"]) == on_disk | {"fnhub.hub"}


@pytest.mark.slow
def test_the_layers_hold() -> None:
    proc = subprocess.run(CHECK, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("planted", "broken"), [
    ("fnhub.cli.registry:fnhub.hub.settings", "the client never imports the hub"),
    ("fnhub.hub.services.search:fnhub.install", "the hub never imports the client"),
    ("fnhub.core.uri:fnhub.config", "fnhub.core imports neither the client nor the hub"),
    ("fnhub.container:fnhub.runner", "no import circles between the client's modules"),
])
def test_a_wrong_way_import_breaks_the_build(planted: str, broken: str) -> None:
    proc = subprocess.run([*CHECK, "--plant", planted], capture_output=True, text=True,
                          check=False)
    assert proc.returncode != 0
    assert f"{broken} BROKEN" in proc.stdout
