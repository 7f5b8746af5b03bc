"""The README's feature store examples run as written: the first, its featureset.yaml in
./driver-stats then its Python block, in a fresh FNHUB_HOME; the second, the catalog's
customer-features loop, against a hub seeded with the catalog."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fnhub.features.store import FeatureStore
from tests.helpers import start_hub

ROOT = Path(__file__).resolve().parents[2]


def _section() -> tuple[str, list[str]]:
    """The feature store section's featureset.yaml and its Python blocks, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Feature store", 1)[1].split("\n## ", 1)[0]
    [manifest] = re.findall(r"```yaml\n(.*?)```", section, re.S)
    return manifest, re.findall(r"```python\n(.*?)```", section, re.S)


def _run(code: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
           "FNHUB_HOME": str(cwd / "home"), "FNHUB_CONFIG_DIR": str(cwd / "config"),
           "PYTHONWARNINGS": "ignore", **extra}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.slow
def test_the_readme_example_runs(tmp_path: Path) -> None:
    manifest, [code, _catalog] = _section()
    (tmp_path / "driver-stats").mkdir()
    (tmp_path / "driver-stats" / "featureset.yaml").write_text(manifest)
    proc = _run(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "home" / "features" / "online.db").is_file()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_catalog_example_runs_against_a_seeded_hub(tmp_path: Path) -> None:
    """Ingest through the seeded transform, training data, hub://train, materialize, online
    lookup: the block's own asserts check the model and that online equals offline at T."""
    _manifest, [_driver_stats, code] = _section()
    hub = start_hub(tmp_path / "hub", seed=True)
    try:
        proc = _run(code, tmp_path, FNHUB_HUB=hub.url)
    finally:
        hub.stop()
    assert proc.returncode == 0, proc.stderr[-4000:]
    with FeatureStore(offline=tmp_path / "home" / "features" / "offline",
                      online=tmp_path / "home" / "features" / "online.db") as store:
        [applied] = store.list()
    assert (applied.namespace, applied.name, applied.verified) == (
        "library", "customer-features", True)
    assert applied.transform is not None
    host = hub.url.removeprefix("http://")
    assert applied.transform.uri == (f"hub://{host}/library/customer-aggregates:1.0.0@"
                                     f"{applied.transform.digest}")
