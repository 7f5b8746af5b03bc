"""Fixtures for the feature store tests: a store in a tmp folder, with a set applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from fnhub.config import Config, HubEntry
from fnhub.features.store import FeatureStore
from tests.features.factories import write_featureset


def local_config(home: Path) -> Config:
    return Config(hubs=[HubEntry(url="http://127.0.0.1:9")], home=home,
                  config_dir=home / "config", offline=False)


def make_store(root: Path, online: str | None = None,
               offline: str | None = None) -> FeatureStore:
    return FeatureStore(offline=offline or root / "offline", online=online or root / "online.db",
                        config=local_config(root / "home"))


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    fs = make_store(tmp_path)
    fs.apply(write_featureset(tmp_path / "sets"))
    yield fs
    fs.close()
