"""Server settings: defaults anchored in the data dir, environment overrides, storage URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from fnhub.core.errors import InvalidInput
from fnhub.hub.settings import ServerSettings


def test_defaults_live_in_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = ServerSettings()
    assert settings.data_dir == tmp_path / ".fnhub"
    assert settings.database_url == f"sqlite:///{tmp_path / '.fnhub' / 'hub.db'}"
    assert settings.storage_path() == tmp_path / ".fnhub" / "blobs"
    assert (settings.host, settings.port, settings.private) == ("127.0.0.1", 8080, False)
    assert settings.max_package_size == 100 * 1024 * 1024
    assert settings.admin_token is None


def test_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FNHUB_SERVER_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("FNHUB_SERVER_PRIVATE", "true")
    monkeypatch.setenv("FNHUB_SERVER_PORT", "9000")
    monkeypatch.setenv("FNHUB_SERVER_ADMIN_TOKEN", "s3cret")
    monkeypatch.setenv("FNHUB_SERVER_STORAGE_URL", f"file://{tmp_path / 'elsewhere'}")
    settings = ServerSettings()
    assert settings.private and settings.port == 9000
    assert settings.admin_token is not None and "s3cret" not in repr(settings)
    assert settings.storage_path() == tmp_path / "elsewhere"
    assert settings.database_url.endswith("/d/hub.db")


def test_storage_urls(tmp_path: Path) -> None:
    assert ServerSettings(data_dir=tmp_path, storage_url=str(tmp_path / "b")).storage_path() \
        == tmp_path / "b"
    s3 = ServerSettings(data_dir=tmp_path, storage_url="s3://bucket/some/prefix/")
    assert s3.s3_location() == ("bucket", "some/prefix/")
    assert ServerSettings(data_dir=tmp_path, storage_url="s3://bucket").s3_location() \
        == ("bucket", "")
    assert ServerSettings(data_dir=tmp_path).s3_location() is None
    with pytest.raises(InvalidInput, match="not a folder"):
        s3.storage_path()
    with pytest.raises(InvalidInput, match="s3://bucket/prefix"):
        ServerSettings(data_dir=tmp_path, storage_url="s3:///prefix").s3_location()
    with pytest.raises(InvalidInput, match="unknown scheme"):
        ServerSettings(data_dir=tmp_path, storage_url="ftp://host/x").storage_path()
    with pytest.raises(InvalidInput, match="local path"):
        ServerSettings(data_dir=tmp_path, storage_url="file://host/x").storage_path()
