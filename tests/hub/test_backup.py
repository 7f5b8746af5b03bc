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
from fnhub.core.errors import Conflict
from fnhub.core.index import IndexKeyInfo, verify_index
from fnhub.core.signing import Envelope, public_key_from_b64
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


def _index(app: FastAPI) -> dict[str, Any]:
    """The function's signed index payload (the hub's own key verifies it)."""
    client = make_client(app)
    info = IndexKeyInfo.model_validate(client.get("/api/v1/index-key").json())
    envelope = Envelope.model_validate_json(client.get("/api/v1/functions/alice/fn/index").content)
    index = verify_index(envelope, {info.keyid: public_key_from_b64(info.public_key)})
    return index.model_dump(mode="json")


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

    # the source changes after the backup: its index serial moves past the backup's
    alice.publish("fn", "1.3.0")
    newest = _index(app)

    target = ServerSettings(data_dir=tmp_path / "target", database_url=fresh_database_url)
    restore = ["restore", str(dump), "--data-dir", str(target.data_dir)]
    if fresh_database_url:
        restore += ["--database-url", fresh_database_url]
    code, counts = _cli(capsys, *restore)
    assert code == 0 and counts["rows"]["versions"] == 3

    with pytest.raises(Conflict, match="every replica needs the same index key"):
        create_app(target)  # the backup's index key is not there: refused, not replaced
    restored = create_app(target.model_copy(update={"index_key": settings.index_key_path()}))
    try:
        assert _snapshot(restored, alice.token) == before
        rolled_back = _index(restored)
        assert "1.3.0" not in rolled_back["versions"]
        assert rolled_back["serial"] > newest["serial"]  # never lower than any served before
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
