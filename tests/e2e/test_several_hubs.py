"""`hub search` asks every configured hub, in order, and labels each result with its hub: two
real `hub serve` processes and one address where nothing listens, through the real CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import CLI, HubProcess, free_port, start_hub, write_function

pytestmark = pytest.mark.slow


def _publish(hub: HubProcess, root: Path, namespace: str, description: str) -> None:
    admin = CLI(root / "admin", hub.url, hub.admin_token)
    token = admin.json("tokens", "create", "laptop", "--scope", f"publish:{namespace}",
                       "--user", namespace)["token"]
    user = CLI(root / namespace, hub.url, token)
    user.json("keys", "generate", "--name", "laptop")
    user.json("keys", "register", "laptop", "--namespace", namespace)
    folder = write_function(root / "scale", name="scale", namespace=namespace, version="1.0.0")
    manifest = folder / "function.yaml"
    manifest.write_text(manifest.read_text().replace(
        "Scale the value column of a CSV table", description))
    user.json("publish", str(folder))


@pytest.fixture(scope="module")
def hubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, HubProcess]]:
    root = tmp_path_factory.mktemp("hubs")
    first = start_hub(root / "first" / "data")
    second = start_hub(root / "second" / "data")
    try:
        _publish(first, root / "first", "alice", "Scale a column (the team hub)")
        _publish(second, root / "second", "bob", "Scale a column (the public hub)")
        yield first, second
    finally:
        first.stop()
        second.stop()


def _user(root: Path, *urls: str) -> CLI:
    """A user whose config.toml lists `urls` in this order (no FNHUB_HUB)."""
    cli = CLI(root)
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "config" / "config.toml").write_text(
        "".join(f'[[hubs]]\nurl = "{url}"\n\n' for url in urls))
    return cli


def test_every_hub_is_searched_in_order_and_named(hubs: tuple[HubProcess, HubProcess],
                                                  tmp_path: Path) -> None:
    first, second = hubs
    dead = f"http://127.0.0.1:{free_port()}"
    user = _user(tmp_path / "user", first.url, dead, second.url)
    found = user.json("search", "scale")
    assert [(i["hub"], f"{i['namespace']}/{i['name']}") for i in found["items"]] == [
        (first.url, "alice/scale"), (second.url, "bob/scale")]
    assert [(h["url"], h["total"]) for h in found["hubs"]] == [
        (first.url, 1), (dead, 0), (second.url, 1)]
    assert "cannot reach the hub" in found["hubs"][1]["error"]
    assert found["total"] == 2

    proc = user("search", "scale")
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout
    assert table.index(first.url.split("//")[1]) < table.index(second.url.split("//")[1])
    assert f"skipped {dead}" in proc.stderr

    # the order is the configuration's
    swapped = _user(tmp_path / "swapped", second.url, first.url).json("search", "scale")
    assert [i["namespace"] for i in swapped["items"]] == ["bob", "alice"]


def test_a_typo_is_corrected_on_each_hub(hubs: tuple[HubProcess, HubProcess],
                                         tmp_path: Path) -> None:
    first, second = hubs
    user = _user(tmp_path / "user", first.url, second.url)
    found = user.json("search", "sclae")
    assert [i["namespace"] for i in found["items"]] == ["alice", "bob"]
    assert [h["suggestion"] for h in found["hubs"]] == ["scale", "scale"]
    assert "showing results for 'scale'" in user.ok("search", "sclae")


def test_no_hub_answering_is_an_error(tmp_path: Path) -> None:
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    _user(tmp_path / "user", *dead).fails("search", "scale", match="cannot reach the hub")
