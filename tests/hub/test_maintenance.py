"""`hub admin fsck` and `hub admin gc` on the file store (acceptance 5), through the real CLI
entry point on a hub populated over HTTP: packages and an OCI image."""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import select

from fnhub.cli.main import main
from fnhub.hub.context import Hub
from fnhub.hub.db import Database
from fnhub.hub.models import utcnow
from fnhub.hub.oci.models import OciUpload
from fnhub.hub.oci.uploads import UPLOAD_TTL
from fnhub.hub.services import maintenance
from fnhub.hub.settings import ServerSettings
from fnhub.hub.storage import FileBlobStore
from tests.helpers import leftover_names
from tests.hub.factories import Publisher
from tests.oci.helpers import Pusher, make_image

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

HOUR = 3600


def _admin(capsys: pytest.CaptureFixture[str], settings: ServerSettings,
           *args: str) -> tuple[int, Any]:
    """`hub admin ... --data-dir D --json` in this process: exit code and parsed output."""
    capsys.readouterr()
    code = main(["admin", *args, "--data-dir", str(settings.data_dir), "--json"])
    return code, json.loads(capsys.readouterr().out)


def _age(store: FileBlobStore, digest: str, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(store.path(digest), (then, then))


@pytest.fixture
def populated(client: TestClient, alice: Publisher) -> dict[str, str]:
    """Two package versions and a two-layer image; returns digests by what they are."""
    digests = {v: alice.publish("fn", v)["package"]["digest"] for v in ("1.0.0", "1.1.0")}
    image = make_image(2, seed="maint")
    Pusher(client, alice.token).image("alice/img", "v1", image)
    layer = next(d for d, data in image.blobs.items() if data != image.blobs[
        json.loads(image.manifest)["config"]["digest"]])
    return {**digests, "manifest": image.digest, "layer": layer}


def test_fsck_finds_an_altered_blob_and_a_missing_one(
        hub: Hub, settings: ServerSettings, populated: dict[str, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    clean = maintenance.fsck(hub)
    assert clean.ok and (clean.blobs_checked, clean.rows_checked) == (6, 6)
    assert isinstance(hub.store, FileBlobStore)
    altered = hub.store.path(populated["1.0.0"])
    data = bytearray(altered.read_bytes())
    data[len(data) // 2] ^= 0xFF
    altered.write_bytes(bytes(data))
    hub.store.path(populated["1.1.0"]).unlink()
    hub.store.path(populated["layer"]).unlink()

    code, report = _admin(capsys, settings, "fsck")
    assert code == 1 and report["ok"] is False
    problems = {(p["kind"], p["digest"]): p["detail"] for p in report["problems"]}
    assert set(problems) == {("digest_mismatch", populated["1.0.0"]),
                             ("missing_blob", populated["1.1.0"]),
                             ("missing_blob", populated["layer"])}
    assert "package of alice/fn@1.1.0" in problems["missing_blob", populated["1.1.0"]]
    assert "OCI blob in alice/img" in problems["missing_blob", populated["layer"]]


def test_gc_deletes_only_unreferenced_blobs_past_the_grace_period(
        hub: Hub, settings: ServerSettings, populated: dict[str, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    store = hub.store
    assert isinstance(store, FileBlobStore)
    orphans = {}
    for label in ("old", "fresh"):
        staged = store.stage([f"orphan {label}".encode()])
        store.commit(staged)
        orphans[label] = staged.digest
    for digest in (orphans["old"], *populated.values()):
        _age(store, digest, 2 * HOUR)  # referenced blobs are old too: age alone never counts

    dry = maintenance.gc(hub, timedelta(hours=1), dry_run=True)
    assert dry.deleted == [orphans["old"]] and store.exists(orphans["old"])
    assert (dry.kept_referenced, dry.kept_recent) == (6, 1)

    code, report = _admin(capsys, settings, "gc", "--grace", str(HOUR))
    assert code == 0 and report["deleted"] == [orphans["old"]]
    assert report["bytes_freed"] == len(b"orphan old")
    assert not store.exists(orphans["old"]) and store.exists(orphans["fresh"])
    assert all(store.exists(digest) for digest in populated.values())
    assert maintenance.fsck(hub).ok

    code, report = _admin(capsys, settings, "gc", "--grace", "0")
    assert report["deleted"] == [orphans["fresh"]]


def test_gc_sweeps_what_crashed_uploads_left_and_keeps_live_sessions(
        hub: Hub, settings: ServerSettings, client: TestClient, alice: Publisher,
        capsys: pytest.CaptureFixture[str]) -> None:
    store = hub.store
    pusher = Pusher(client, alice.token)
    started = client.post("/v2/alice/img/blobs/uploads/", headers=pusher.headers)
    client.patch(started.headers["Location"], content=b"still coming", headers=pusher.headers)
    live = leftover_names(store)
    crashed, fresh = store.writer().finish().path, store.writer().finish().path
    for path in (*live, crashed):
        os.utime(path, (time.time() - 2 * HOUR,) * 2)

    code, report = _admin(capsys, settings, "gc", "--grace", str(HOUR))
    assert code == 0 and report["leftovers_removed"] == [str(crashed)]
    assert leftover_names(store) == sorted([*live, str(fresh)])
    with hub.db.write() as session:  # the session goes stale: gc expires it, chunk and all
        for upload in session.exec(select(OciUpload)).all():
            upload.updated_at = utcnow() - UPLOAD_TTL - timedelta(minutes=1)
    code, report = _admin(capsys, settings, "gc", "--grace", str(HOUR))
    assert report["uploads_expired"] == 1 and leftover_names(store) == [str(fresh)]
    assert client.get(started.headers["Location"], headers=pusher.headers).status_code == 404


def test_migrate_brings_a_new_database_to_the_newest_schema(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["admin", "migrate", "--data-dir", str(tmp_path / "new")]) == 0
    assert "up to date" in capsys.readouterr().out
    db = Database(f"sqlite:///{tmp_path / 'new' / 'hub.db'}")
    with db.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == (
            ScriptDirectory(str(resources.files("fnhub.hub") / "migrations")).get_current_head(),)
    db.dispose()
