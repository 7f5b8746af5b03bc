"""Shared fixtures: a clean environment for every test, and real hub processes."""

from __future__ import annotations

import pytest

from tests.helpers import ENV_VARS


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's hub, token, cache or keys."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    root = tmp_path_factory.mktemp("client")
    monkeypatch.setenv("FNHUB_HOME", str(root / "home"))
    monkeypatch.setenv("FNHUB_CONFIG_DIR", str(root / "config"))
