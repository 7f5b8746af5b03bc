"""Where the store lives: FeatureStore(offline=, online=), FNHUB_FEATURES_* variables, the
[features] table of config.toml, else FNHUB_HOME; `hub login` keeps the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from fnhub.config import load_config, save_login
from fnhub.features.online import SQLiteStore
from fnhub.features.store import FeatureStore


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("FNHUB_FEATURES_OFFLINE", "FNHUB_FEATURES_ONLINE", "FNHUB_HUB", "FNHUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FNHUB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FNHUB_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path


def _where(store: FeatureStore) -> tuple[str, str]:
    online = store.online
    assert isinstance(online, SQLiteStore)
    return store.offline.location.root, online.url


def test_defaults_live_under_fnhub_home(env: Path) -> None:
    with FeatureStore() as store:
        assert _where(store) == (str(env / "home/features/offline"),
                                 f"sqlite:///{env / 'home/features/online.db'}")


def test_config_file_then_environment_then_arguments(env: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    (env / "config").mkdir()
    (env / "config" / "config.toml").write_text(
        f'[features]\noffline = "{env / "from-file"}"\nonline = "{env / "file.db"}"\n')
    with FeatureStore() as store:
        assert _where(store) == (str(env / "from-file"), f"sqlite:///{env / 'file.db'}")
    monkeypatch.setenv("FNHUB_FEATURES_OFFLINE", str(env / "from-env"))
    monkeypatch.setenv("FNHUB_FEATURES_ONLINE", f"sqlite://{env / 'env.db'}")
    with FeatureStore() as store:
        assert _where(store) == (str(env / "from-env"), f"sqlite:///{env / 'env.db'}")
    with FeatureStore(offline=env / "arg", online=env / "arg.db") as store:
        assert _where(store) == (str(env / "arg"), f"sqlite:///{env / 'arg.db'}")
    save_login(load_config(), "http://127.0.0.1:9999", "token")
    assert f'offline = "{env / "from-file"}"' in (env / "config" / "config.toml").read_text()


def test_unknown_store_urls_are_refused(env: Path) -> None:
    from fnhub.core.errors import InvalidInput

    with pytest.raises(InvalidInput, match="unsupported offline store"):
        FeatureStore(offline="ftp://x/y")
    with pytest.raises(InvalidInput, match="unsupported online store"):
        _ = FeatureStore(online="mongodb://x").online
