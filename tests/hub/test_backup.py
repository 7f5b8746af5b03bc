"""`hub admin backup` / `restore`: a round trip into a fresh hub, on SQLite and PostgreSQL.

The source hub (SQLite) holds packages, a yanked version, a tag, a download, a trusted
publisher and an OCI image. The restored hub answers the same, serves the same bytes, keeps
its search index and tokens, and takes new publishes (its id sequences moved on).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from fnhub.cli.main import main
from fnhub.hub.app import create_app
from fnhub.hub.services import maintenance
from fnhub.hub.settings import ServerSettings
from tests.hub.factories import Publisher, auth, make_client, make_publisher
from tests.oci.helpers import Pusher, make_image

READS = ("/api/v1/functions/alice/fn", "/api/v1/functions/alice/fn/versions/1.0.0",
         "/api/v1/functions/alice/fn/versions/1.0.0/attestations",
         "/api/v1/functions?q=fn", "/api/v1/functions?q=does%20things&sort=relevance",
         "/api/v1/namespaces", "/api/v1/keys?namespace=alice")


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    capsys.readouterr()
    code = main(["admin", *args, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if code == 0 else captured.err


def _snapshot(app: FastAPI, token: str) -> dict[str, Any]:
    client = make_client(app)
    out: dict[str, Any] = {path: client.get(path).json() for path in READS}
    digest = out["/api/v1/functions/alice/fn/versions/1.0.0"]["package"]["digest"]
    out["package"] = b"".join(app.state.hub.store.open(digest))  # (a download would count)
    out["manifest"] = client.get("/v2/alice/img/manifests/v1", headers=auth(token)).content
    out["trusted"] = client.get("/api/v1/namespaces/alice/trusted-publishers",
                                headers=auth(token)).json()
    return out


@pytest.fixture
def source(tmp_path: Path) -> Iterator[tuple[FastAPI, ServerSettings, Publisher]]:
    settings = ServerSettings(data_dir=tmp_path / "source")
    app = create_app(settings)
    client = make_client(app)
    admin = (settings.data_dir / "admin-token").read_text().strip()
    alice = make_publisher(client, admin, "alice", tmp_path / "work")
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        alice.publish("fn", version)
    client.post("/api/v1/functions/alice/fn/versions/1.2.0/yank", json={"reason": "broken"},
                headers=auth(alice.token))
    client.put("/api/v1/functions/alice/fn/tags/stable", json={"version": "1.0.0"},
               headers=auth(alice.token))
    client.get("/api/v1/functions/alice/fn/versions/1.1.0/package")
    client.post("/api/v1/namespaces/alice/trusted-publishers", headers=auth(alice.token),
                json={"issuer": "github", "repository": "alice/fn"})
    Pusher(client, alice.token).image("alice/img", "v1", make_image(2, seed="backup"))
    yield app, settings, alice
    app.state.hub.close()


def test_round_trip(source: tuple[FastAPI, ServerSettings, Publisher], tmp_path: Path,
                    fresh_database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    app, settings, alice = source
    before = _snapshot(app, alice.token)
    dump = tmp_path / "backup"
    code, report = _cli(capsys, "backup", str(dump), "--data-dir", str(settings.data_dir))
    assert code == 0 and report["blobs"] == 3 + 4  # packages; OCI config, 2 layers, manifest
    assert report["rows"]["versions"] == 3 and "rate_limit_windows" not in report["rows"]
    assert not (tmp_path / "backup.partial").exists()

    target = ServerSettings(data_dir=tmp_path / "target", database_url=fresh_database_url)
    restore = ["restore", str(dump), "--data-dir", str(target.data_dir)]
    if fresh_database_url:
        restore += ["--database-url", fresh_database_url]
    code, counts = _cli(capsys, *restore)
    assert code == 0 and counts["rows"]["versions"] == 3

    restored = create_app(target)
    try:
        assert _snapshot(restored, alice.token) == before
        assert maintenance.fsck(restored.state.hub).ok
        again = Publisher(alice.user, alice.namespace, alice.token, alice.key,
                          make_client(restored), alice.root)
        assert again.publish("fn", "2.0.0")["version"] == "2.0.0"  # ids continue past the dump
        assert again.publish("other", "1.0.0")["name"] == "other"
        code, message = _cli(capsys, *restore)
        assert code == 1 and "not empty" in message
    finally:
        restored.state.hub.close()


def test_backups_refuse_to_overwrite_and_read_only_their_format(
        source: tuple[FastAPI, ServerSettings, Publisher], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    _, settings, _ = source
    (tmp_path / "taken").mkdir()
    code, message = _cli(capsys, "backup", str(tmp_path / "taken"),
                         "--data-dir", str(settings.data_dir))
    assert code == 1 and "exists already" in message
    code, message = _cli(capsys, "restore", str(tmp_path / "taken"),
                         "--data-dir", str(tmp_path / "fresh"))
    assert code == 1 and "not a hub backup" in message
    code, _ = _cli(capsys, "backup", str(tmp_path / "meta"), "--no-blobs",
                   "--data-dir", str(settings.data_dir))
    assert code == 0 and not (tmp_path / "meta" / "blobs").exists()
    meta = json.loads((tmp_path / "meta" / "backup.json").read_text())
    (tmp_path / "meta" / "backup.json").write_text(json.dumps({**meta, "revision": "0001"}))
    code, message = _cli(capsys, "restore", str(tmp_path / "meta"),
                         "--data-dir", str(tmp_path / "fresh"))
    assert code == 1 and "schema revision 0001" in message
