"""Acceptance: publish → search → show → install → run → new version → ranges → yank → pins.

Everything goes through a real `hub serve` process, the real `hub` CLI in subprocesses and
`fnhub.import_function`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import fnhub
from tests.helpers import CLI, HubProcess, start_hub, write_function
from tests.s3 import Backend

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, hub_backend: Backend) -> Iterator[HubProcess]:
    process = start_hub(tmp_path_factory.mktemp("hub") / "data",
                        database_url=hub_backend.database_url, extra_env=hub_backend.env)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def alice(hub: HubProcess, tmp_path_factory: pytest.TempPathFactory) -> CLI:
    admin = CLI(tmp_path_factory.mktemp("admin"), hub.url, hub.admin_token)
    token = admin.json("tokens", "create", "alice-laptop", "--scope", "publish:*",
                       "--user", "alice")["token"]
    return CLI(tmp_path_factory.mktemp("alice"), hub.url, token)


def test_publish_install_run_yank_pin(hub: HubProcess, alice: CLI, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    keyid = alice.json("keys", "generate", "--name", "laptop")["keyid"]
    assert len(keyid) == 64
    registered = alice.json("keys", "register", "laptop", "--namespace", "alice")
    assert registered["keyid"] == keyid

    fn = write_function(tmp_path / "scale", name="scale", namespace="alice", version="1.0.0")
    published = alice.json("publish", str(fn))
    assert (published["namespace"], published["name"], published["version"]) == (
        "alice", "scale", "1.0.0")
    digest_100 = published["package"]["digest"]
    assert published["signatures"][0]["keyid"] == keyid

    found = alice.json("search", "scale")["items"]
    assert [f"{i['namespace']}/{i['name']}" for i in found] == ["alice/scale"]

    card = alice.json("show", "hub://alice/scale")
    assert card["version"]["version"] == "1.0.0"
    assert [p["name"] for p in card["version"]["manifest"]["spec"]["inputs"]] == [
        "table", "factor"]

    installed = alice.ok("install", "hub://alice/scale:1.0.0")
    assert "installed alice/scale@1.0.0" in installed
    assert keyid[:16] in installed

    data = tmp_path / "data.csv"
    data.write_text("value\n1\n2\n3.5\n")
    ran = alice.json("run", "hub://alice/scale:1.0.0", "-p", "factor=2", "-i", f"table={data}",
                     "--out", str(tmp_path / "run1"))
    assert ran["outputs"]["total"] == 13.0
    scaled = Path(ran["outputs"]["scaled"])
    assert scaled.is_relative_to(tmp_path / "run1")
    assert [r["value"] for r in csv.DictReader(scaled.open())] == ["2.0", "4.0", "7.0"]
    record = json.loads((tmp_path / "run1" / "run.json").read_text())
    assert record["status"] == "succeeded"

    write_function(fn, name="scale", namespace="alice", version="1.1.0", factor_default=3.0)
    alice.ok("publish", str(fn))

    # import_function in this process, as alice
    for key, value in alice.env.items():
        if key.startswith("FNHUB_"):
            monkeypatch.setenv(key, value)
    newest = fnhub.import_function("hub://alice/scale:^1.0")
    assert newest.version == "1.1.0"
    assert newest(table=data)["total"] == 19.5  # factor defaults to 3 in 1.1.0

    alice.ok("yank", "hub://alice/scale:1.1.0", "--reason", "wrong default factor")
    assert fnhub.import_function("hub://alice/scale:^1.0").version == "1.0.0"
    assert alice.json("show", "hub://alice/scale:^1.0")["version"]["version"] == "1.0.0"
    assert alice.json("show", "hub://alice/scale")["version"]["version"] == "1.0.0"

    pinned = alice("install", "hub://alice/scale:1.1.0")
    assert pinned.returncode == 0, pinned.stderr
    assert "yanked" in pinned.stderr

    wrong = "sha256:" + "0" * 64
    alice.fails("install", f"hub://alice/scale:1.0.0@{wrong}", match="pins " + wrong)
    right = alice.ok("install", f"hub://alice/scale:1.0.0@{digest_100}")
    assert "alice/scale@1.0.0" in right

    alice.ok("tag", "hub://alice/scale:1.0.0", "stable")
    assert alice.json("show", "hub://alice/scale:stable")["version"]["version"] == "1.0.0"
    assert alice.json("verify", "hub://alice/scale:stable")["keyid"] == keyid

    listed = {(r["name"], r["version"]) for r in alice.json("list")}
    assert {("scale", "1.0.0"), ("scale", "1.1.0")} <= listed
    alice.ok("uninstall", "hub://alice/scale:1.1.0")
    assert {r["version"] for r in alice.json("list")} == {"1.0.0"}
    alice.fails("uninstall", "hub://alice/scale:1.1.0", match="no version of alice/scale")
