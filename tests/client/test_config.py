"""Client configuration: config.toml, then FNHUB_* variables on top."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fnhub.config import DEFAULT_HUB, load_config, save_login
from fnhub.core.errors import InvalidInput


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config()
    assert [h.url for h in config.hubs] == [DEFAULT_HUB]
    assert not config.offline


def test_login_is_saved_privately_and_first(tmp_path: Path) -> None:
    config = load_config()
    save_login(config, "http://a.example:1/", "tok-a")
    path = save_login(config, "https://b.example", "tok-b")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    hubs = load_config().hubs
    assert [(h.url, h.token) for h in hubs] == [("https://b.example", "tok-b"),
                                                ("http://a.example:1", "tok-a")]


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    save_login(load_config(), "http://a.example:1", "tok-a")
    monkeypatch.setenv("FNHUB_HUB", "http://env.example:2")
    monkeypatch.setenv("FNHUB_TOKEN", "tok-env")
    monkeypatch.setenv("FNHUB_OFFLINE", "1")
    config = load_config()
    assert (config.hubs[0].url, config.hubs[0].token) == ("http://env.example:2", "tok-env")
    assert config.hubs[1].url == "http://a.example:1"
    assert config.offline


def test_a_host_in_a_uri_picks_its_configured_hub() -> None:
    save_login(load_config(), "https://hub.example", "tok")
    config = load_config()
    assert config.hub_for_host("hub.example").token == "tok"
    assert config.hub_for_host("localhost:8080").url == "http://localhost:8080"


@pytest.mark.parametrize("url", ["ftp://x", "hub.example", "http://"])
def test_bad_hub_urls(url: str) -> None:
    with pytest.raises(InvalidInput, match="invalid hub URL"):
        save_login(load_config(), url, None)


def test_broken_config_file_is_a_clear_error() -> None:
    config = load_config()
    config.config_dir.mkdir(parents=True)
    config.config_file.write_text("[[hubs]]\nurl = 3\n")
    with pytest.raises(InvalidInput, match="invalid configuration"):
        load_config()


def test_environment_names_ignore_case_and_bad_values_are_one_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The FNHUB_* variables are read without pydantic-settings, as it read them: the names
    without regard to case, the values with pydantic's parsing (`yes`, `0`)."""
    monkeypatch.setenv("fnhub_hub", "http://lower.example:9")
    monkeypatch.setenv("FNHUB_OFFLINE", "yes")
    config = load_config()
    assert config.hubs[0].url == "http://lower.example:9" and config.offline
    monkeypatch.setenv("FNHUB_OFFLINE", "0")
    assert not load_config().offline
    monkeypatch.setenv("FNHUB_OFFLINE", "maybe")
    with pytest.raises(InvalidInput, match="invalid FNHUB_OFFLINE: Input should be a valid "
                                           "boolean"):
        load_config()
