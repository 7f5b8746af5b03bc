"""Acceptance: the client refuses what was tampered with on the hub's side, installing nothing.

The hub's own stores are altered directly (the blob file on disk, the envelope in the DB), the
way an attacker who owns the hub's storage could, and `hub install` must refuse each. What is
tested is the client's checks, so one backend (SQLite, blobs in the data dir) serves; the
publish flow (`test_publish_flow`) covers the signed envelope's round trip through PostgreSQL
and S3.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import JSON, String, column, select, table, update

from fnhub.core.signing import generate_key, load_private_key, make_statement, sign_statement
from tests.helpers import CLI, HubProcess, hub_database, publisher, start_hub, write_function

pytestmark = pytest.mark.slow
# The columns these tests touch, typed so JSON reads and writes alike on any database.
VERSIONS = table("versions", column("version", String()), column("envelope", JSON()),
                 column("package_digest", String()))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, CLI, Path]]:
    root = tmp_path_factory.mktemp("tamper")
    hub = start_hub(root / "hub")
    carol = publisher(root, hub, "carol", scope="publish:*")
    for patch in range(5):
        fn = write_function(root / "fn", name="scale", namespace="carol", version=f"1.0.{patch}")
        carol.ok("publish", str(fn))
    yield hub, carol, root
    hub.stop()


def _envelope(hub: HubProcess, version: str) -> dict:
    with hub_database(hub) as db:
        return db.execute(select(VERSIONS.c.envelope)
                          .where(VERSIONS.c.version == version)).scalar_one()


def _set_envelope(hub: HubProcess, version: str, envelope: dict) -> None:
    with hub_database(hub) as db:
        db.execute(update(VERSIONS).where(VERSIONS.c.version == version)
                   .values(envelope=envelope))


def _digest(hub: HubProcess, version: str) -> str:
    with hub_database(hub) as db:
        return db.execute(select(VERSIONS.c.package_digest)
                          .where(VERSIONS.c.version == version)).scalar_one()


def _assert_not_installed(cli: CLI, version: str) -> None:
    assert ("carol/scale", version) not in {(r["namespace"] + "/" + r["name"], r["version"])
                                              for r in cli.json("list")}
    assert not list((cli.root / "home" / "functions").glob(f"*/carol/scale/{version}"))


def test_untampered_version_installs(setup: tuple[HubProcess, CLI, Path]) -> None:
    _, carol, _ = setup
    assert "installed carol/scale@1.0.0" in carol.ok("install", "hub://carol/scale:1.0.0")


def test_altered_blob_on_disk_is_refused(setup: tuple[HubProcess, CLI, Path]) -> None:
    hub, carol, _ = setup
    hexdigest = _digest(hub, "1.0.1").removeprefix("sha256:")
    [blob] = [p for p in hub.data_dir.rglob(hexdigest) if p.is_file()]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    carol.fails("install", "hub://carol/scale:1.0.1", match="digest")
    _assert_not_installed(carol, "1.0.1")


def test_changed_signature_is_refused(setup: tuple[HubProcess, CLI, Path]) -> None:
    hub, carol, _ = setup
    envelope = _envelope(hub, "1.0.2")
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[0] ^= 0x01
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    _set_envelope(hub, "1.0.2", envelope)
    carol.fails("install", "hub://carol/scale:1.0.2", match="does not verify")
    _assert_not_installed(carol, "1.0.2")


def test_signature_by_unregistered_key_is_refused(setup: tuple[HubProcess, CLI, Path]) -> None:
    hub, carol, _ = setup
    statement = make_statement("carol/scale@1.0.3", _digest(hub, "1.0.3"), predicate={})
    _set_envelope(hub, "1.0.3", sign_statement(statement, generate_key()).model_dump())
    carol.fails("install", "hub://carol/scale:1.0.3", match="key")
    _assert_not_installed(carol, "1.0.3")


def test_subject_naming_another_digest_is_refused(setup: tuple[HubProcess, CLI, Path]) -> None:
    hub, carol, _ = setup
    key = load_private_key(carol.root / "config" / "keys" / "default.key")
    statement = make_statement("carol/scale@1.0.4", "sha256:" + "ab" * 32, predicate={})
    _set_envelope(hub, "1.0.4", sign_statement(statement, key).model_dump())
    carol.fails("install", "hub://carol/scale:1.0.4", match="sha256:" + "ab" * 32)
    _assert_not_installed(carol, "1.0.4")


def test_modified_installed_files_are_refused_at_run(setup: tuple[HubProcess, CLI, Path]) -> None:
    _, carol, root = setup
    carol.ok("install", "hub://carol/scale:1.0.0")
    [code] = (carol.root / "home" / "functions").glob("*/carol/scale/1.0.0/files/scale.py")
    code.write_text(code.read_text() + "\nimport os  # injected\n")
    data = root / "data.csv"
    data.write_text("value\n1\n")
    carol.fails("run", "hub://carol/scale:1.0.0", "-i", f"table={data}", match="were modified")
