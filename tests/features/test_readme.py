"""The README's feature store example runs as written: its featureset.yaml in ./driver-stats,
then its Python block, in a fresh FNHUB_HOME."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_readme_example_runs(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Feature store", 1)[1].split("\n## ", 1)[0]
    [manifest] = re.findall(r"```yaml\n(.*?)```", section, re.S)
    [code] = re.findall(r"```python\n(.*?)```", section, re.S)
    (tmp_path / "driver-stats").mkdir()
    (tmp_path / "driver-stats" / "featureset.yaml").write_text(manifest)
    env = {"PATH": "/usr/bin:/bin", "FNHUB_HOME": str(tmp_path / "home"),
           "FNHUB_CONFIG_DIR": str(tmp_path / "config"), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "home" / "features" / "online.db").is_file()
