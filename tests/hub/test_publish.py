"""Publishing: the happy path, and every rejection leaving no rows and no blobs behind."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from fnhub.core.errors import VersionExists
from fnhub.core.manifest import parse_manifest, parse_manifest_text
from fnhub.core.packaging import digest_file
from fnhub.core.signing import generate_key, key_id
from fnhub.hub.context import Hub
from fnhub.hub.services import auth as auth_service
from fnhub.hub.services import publish
from tests.hub.factories import (
    Publisher,
    Upload,
    auth,
    build,
    counts,
    envelope_for,
    error_code,
    write_function,
)

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


def test_publish_happy_path(client: TestClient, hub: Hub, alice: Publisher) -> None:
    upload = alice.upload("scale", "1.0.0", description="Scale a column", categories=["prep"])
    response = alice.send(upload)
    assert response.status_code == 201, response.text
    detail = response.json()
    digest = "sha256:" + hashlib.sha256(upload.package).hexdigest()
    assert detail["package"] == {"digest": digest, "size": len(upload.package)}
    assert detail["signatures"] == [{"keyid": key_id(alice.key.public_key())}]
    assert detail["manifest"]["metadata"]["description"] == "Scale a column"
    assert (detail["namespace"], detail["name"], detail["version"]) == ("alice", "scale", "1.0.0")
    assert detail["yanked"] is False and detail["downloads"] == 0

    assert hub.store.exists(digest)
    assert counts(hub) == {"versions": 1, "functions": 1, "namespaces": 1, "blobs": 1,
                           "staging": 0}
    card = client.get("/api/v1/functions/alice/scale").json()
    assert card["latest_version"] == "1.0.0"
    assert card["categories"] == ["prep"]
    assert [v["version"] for v in card["versions"]] == ["1.0.0"]
    envelopes = client.get("/api/v1/functions/alice/scale/versions/1.0.0/attestations").json()
    assert json.loads(upload.envelope) == envelopes["envelopes"][0]


def test_publish_service_without_http(hub: Hub, alice: Publisher, tmp_path: Path) -> None:
    upload = alice.upload("direct", "0.1.0")
    caller = auth_service.authenticate(hub, alice.token)
    detail = publish.publish(hub, caller, "alice", "direct", manifest_text=upload.manifest,
                             package=[upload.package[:100], upload.package[100:]],
                             envelope_text=upload.envelope)
    assert detail.version == "0.1.0"
    with pytest.raises(VersionExists):
        publish.publish(hub, caller, "alice", "direct", manifest_text=upload.manifest,
                        package=[upload.package], envelope_text=upload.envelope)
    assert counts(hub)["blobs"] == 1 and counts(hub)["staging"] == 0


def _flip_byte(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


def _tar_gz(members: dict[str, bytes], *, names: dict[str, str] | None = None) -> bytes:
    """A .tar.gz with the given members; `names` renames a member's header (e.g. to '../x')."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo((names or {}).get(name, name))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _changed_content(upload: Upload, alice: Publisher) -> Upload:
    """A valid archive of different content, sent with the original signature."""
    other = alice.upload(upload.name, "1.0.0", description="something else entirely")
    return Upload(upload.namespace, upload.name, other.manifest, other.package, upload.envelope)


def _resign(upload: Upload, **kwargs: Any) -> str:
    digest = "sha256:" + hashlib.sha256(upload.package).hexdigest()
    ref = kwargs.pop("ref", f"{upload.namespace}/{upload.name}@1.0.0")
    return envelope_for(ref, kwargs.pop("digest", digest), kwargs.pop("key"), **kwargs)


def _bad_signature(envelope: str) -> str:
    data = json.loads(envelope)
    sig = data["signatures"][0]["sig"]
    data["signatures"][0]["sig"] = ("A" if sig[0] != "A" else "B") + sig[1:]
    return json.dumps(data)


def _signed_archive(upload: Upload, publisher: Publisher, extra: str) -> Upload:
    """The upload's manifest plus a member called `extra`, correctly signed: only the
    member's name is wrong."""
    package = _tar_gz({"function.yaml": upload.manifest.encode(), extra: b"x = 1\n"})
    repacked = Upload(upload.namespace, upload.name, upload.manifest, package, "")
    return Upload(upload.namespace, upload.name, upload.manifest, package,
                  _resign(repacked, key=publisher.key))


REJECTIONS: dict[str, tuple[Any, int, str]] = {
    "tampered package byte": (
        lambda u, p: Upload(u.namespace, u.name, u.manifest, _flip_byte(u.package, 40),
                            u.envelope), 400, "unsafe_package"),
    "changed content, old signature": (_changed_content, 400, "digest_mismatch"),
    "changed signature": (
        lambda u, p: Upload(u.namespace, u.name, u.manifest, u.package,
                            _bad_signature(u.envelope)), 400, "signature_invalid"),
    "unregistered key": (
        lambda u, p: Upload(u.namespace, u.name, u.manifest, u.package,
                            _resign(u, key=generate_key())), 400, "untrusted_key"),
    "subject naming another digest": (
        lambda u, p: Upload(u.namespace, u.name, u.manifest, u.package,
                            _resign(u, key=p.key, digest="sha256:" + "0" * 64)),
        400, "digest_mismatch"),
    "subject naming another version": (
        lambda u, p: Upload(u.namespace, u.name, u.manifest, u.package,
                            _resign(u, key=p.key, ref="alice/scale@9.9.9")),
        400, "digest_mismatch"),
    "manifest differs from the package's": (
        lambda u, p: Upload(u.namespace, u.name,
                            u.manifest.replace("scale does things", "other words"),
                            u.package, u.envelope), 422, "invalid_manifest"),
    "manifest for another function": (
        lambda u, p: Upload(u.namespace, "other", u.manifest, u.package, u.envelope),
        400, "invalid_input"),
    "invalid manifest": (
        lambda u, p: Upload(u.namespace, u.name, "metadata: [", u.package, u.envelope),
        422, "invalid_manifest"),
    "envelope not JSON": (
        lambda u, p: Upload(u.namespace, u.name, u.manifest, u.package, "{not json"),
        400, "signature_invalid"),
    "not a gzip archive": (
        lambda u, p: Upload(u.namespace, u.name, u.manifest, b"just some bytes", u.envelope),
        400, "unsafe_package"),
    "unsafe archive (.. member)": (
        lambda u, p: Upload(u.namespace, u.name, u.manifest,
                            _tar_gz({"function.yaml": u.manifest.encode(), "evil": b"x"},
                                    names={"evil": "../evil"}), u.envelope),
        400, "unsafe_package"),
    "member name of 1000 characters (a client could not unpack it)": (
        lambda u, p: _signed_archive(u, p, "x" * 1000), 400, "unsafe_package"),
    "member path of 4200 bytes": (
        lambda u, p: _signed_archive(u, p, "/".join(["d" * 200] * 21)), 400, "unsafe_package"),
    "members differing only in case": (
        lambda u, p: _signed_archive(u, p, "FUNCTION.yaml"), 400, "unsafe_package"),
    "archive without function.yaml": (
        lambda u, p: Upload(u.namespace, u.name, u.manifest, _tar_gz({"main.py": b"x = 1\n"}),
                            u.envelope), 422, "invalid_manifest"),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_rejected_publish_leaves_nothing_behind(case: str, hub: Hub, alice: Publisher) -> None:
    tamper, status, code = REJECTIONS[case]
    upload = alice.upload("scale", "1.0.0")
    before = counts(hub)
    response = alice.send(tamper(upload, alice))
    assert (response.status_code, error_code(response)) == (status, code), response.text
    assert counts(hub) == before
    assert before["staging"] == 0 and before["versions"] == 0
    # and the untampered upload still goes through afterwards
    assert alice.send(upload).status_code == 201


def test_oversize_package_is_413_and_leaves_nothing(hub: Hub, alice: Publisher) -> None:
    folder = write_function(alice.root, "big", "1.0.0", namespace="alice")
    (folder / "weights.bin").write_bytes(os.urandom(300 * 1024))  # limit is 256 KiB
    archive, packed = build(folder)
    upload = Upload("alice", "big", (folder / "function.yaml").read_text(),
                    archive.read_bytes(), envelope_for("alice/big@1.0.0", packed.digest,
                                                       alice.key))
    before = counts(hub)
    response = alice.send(upload)
    assert response.status_code == 413, response.text
    assert error_code(response) == "payload_too_large"
    assert "256 KiB" in response.json()["error"]["message"]
    assert counts(hub) == before


def test_blob_is_committed_outside_the_write_transaction(
        hub: Hub, alice: Publisher, monkeypatch: pytest.MonkeyPatch) -> None:
    """Guard: the store's commit (an S3 upload, say) runs while no write transaction holds
    SQLite's write lock: another connection takes the lock at once during the commit."""
    commit = hub.store.commit
    committed: list[str] = []

    def commit_checked(staged: Any) -> None:
        other = sqlite3.connect(hub.settings.data_dir / "hub.db", timeout=0,
                                isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # "database is locked" inside a write transaction
            other.rollback()
        finally:
            other.close()
        commit(staged)
        committed.append(staged.digest)

    monkeypatch.setattr(hub.store, "commit", commit_checked)
    upload = alice.upload("scale", "1.0.0")
    assert alice.send(upload).status_code == 201
    assert committed == ["sha256:" + hashlib.sha256(upload.package).hexdigest()]
    assert hub.store.exists(committed[0])


def test_version_exists_is_409(client: TestClient, hub: Hub, alice: Publisher) -> None:
    upload = alice.upload("scale", "1.0.0")
    assert alice.send(upload).status_code == 201
    again = alice.send(upload)
    assert (again.status_code, error_code(again)) == (409, "version_exists")
    assert counts(hub)["blobs"] == 1


def test_deleted_version_number_stays_reserved(client: TestClient, hub: Hub,
                                               alice: Publisher) -> None:
    upload = alice.upload("scale", "1.0.0")
    assert alice.send(upload).status_code == 201
    gone = client.delete("/api/v1/functions/alice/scale/versions/1.0.0", headers=auth(alice.token))
    assert gone.status_code == 204
    assert counts(hub)["blobs"] == 0
    again = alice.send(upload)
    assert (again.status_code, error_code(again)) == (409, "version_exists")
    assert "never reused" in again.json()["error"]["message"]
    assert counts(hub)["blobs"] == 0 and counts(hub)["staging"] == 0


def test_publish_needs_token_scope_and_ownership(client: TestClient, hub: Hub, alice: Publisher,
                                                 bob: Publisher, admin_token: str) -> None:
    upload = alice.upload("scale", "1.0.0")
    anonymous = client.post(upload.path, files=upload.files())
    assert (anonymous.status_code, error_code(anonymous)) == (401, "unauthorized")
    bad_token = client.post(upload.path, files=upload.files(), headers=auth("fnhub_nope"))
    assert bad_token.status_code == 401

    wrong_scope = bob.send(upload)
    assert (wrong_scope.status_code, error_code(wrong_scope)) == (403, "forbidden")
    assert "publish:alice" in wrong_scope.json()["error"]["message"]

    wide = client.post("/api/v1/tokens", headers=auth(admin_token),
                       json={"name": "wide", "user": "bob", "scopes": ["publish:*"]}).json()
    not_owner = client.post(upload.path, files=upload.files(), headers=auth(wide["token"]))
    assert (not_owner.status_code, error_code(not_owner)) == (403, "forbidden")
    assert "belongs to another user" in not_owner.json()["error"]["message"]

    reader = client.post("/api/v1/tokens", headers=auth(alice.token),
                         json={"name": "ro", "scopes": ["read"]}).json()
    read_only = client.post(upload.path, files=upload.files(), headers=auth(reader["token"]))
    assert read_only.status_code == 403
    assert counts(hub)["versions"] == 0 and counts(hub)["staging"] == 0


def test_signature_by_another_namespaces_key_is_untrusted(hub: Hub, alice: Publisher,
                                                         bob: Publisher) -> None:
    upload = alice.upload("scale", "1.0.0")
    forged = Upload(upload.namespace, upload.name, upload.manifest, upload.package,
                    _resign(upload, key=bob.key))
    response = alice.send(forged)
    assert (response.status_code, error_code(response)) == (400, "untrusted_key")


def test_namespace_without_keys_gets_a_hint(client: TestClient, hub: Hub, admin_token: str,
                                            alice: Publisher) -> None:
    token = client.post("/api/v1/tokens", headers=auth(admin_token), json={
        "name": "carol", "user": "carol", "scopes": ["publish:carol"]}).json()["token"]
    upload = Upload("carol", "fn", *_carol_parts(alice.root, alice.key))
    response = client.post(upload.path, files=upload.files(), headers=auth(token))
    assert (response.status_code, error_code(response)) == (400, "untrusted_key")
    assert "hub keys register" in response.json()["error"]["hint"]
    assert counts(hub)["namespaces"] == 1  # only alice's: the failed publish claimed nothing


def _carol_parts(root: Path, key: Any) -> tuple[str, bytes, str]:
    folder = write_function(root, "fn", "1.0.0", namespace="carol")
    archive, packed = build(folder)
    return ((folder / "function.yaml").read_text(), archive.read_bytes(),
            envelope_for("carol/fn@1.0.0", packed.digest, key))


def test_malformed_forms_are_4xx(client: TestClient, hub: Hub, alice: Publisher) -> None:
    upload = alice.upload("scale", "1.0.0")
    path, headers = upload.path, auth(alice.token)
    missing = client.post(path, headers=headers, files={
        "manifest": (None, upload.manifest), "envelope": (None, upload.envelope)})
    assert missing.status_code == 400 and "package" in missing.json()["error"]["message"]
    extra = client.post(path, headers=headers, files={**upload.files(), "junk": (None, "x")})
    assert extra.status_code == 400 and "junk" in extra.json()["error"]["message"]
    not_multipart = client.post(path, headers=headers, json={"manifest": upload.manifest})
    assert not_multipart.status_code == 400
    garbage = client.post(path, headers={**headers,
                                         "content-type": "multipart/form-data; boundary=xyz"},
                          content=b"--xyz\r\nthis is not a part header\r\n\r\n")
    assert 400 <= garbage.status_code < 500
    assert counts(hub)["versions"] == 0 and counts(hub)["staging"] == 0


def test_package_digest_is_the_packed_digest(hub: Hub, alice: Publisher) -> None:
    folder = write_function(alice.root, "same", "1.0.0", namespace="alice")
    archive, packed = build(folder)
    upload = Upload("alice", "same", (folder / "function.yaml").read_text(), archive.read_bytes(),
                    envelope_for("alice/same@1.0.0", packed.digest, alice.key))
    detail = alice.send(upload).json()
    assert detail["package"]["digest"] == packed.digest == digest_file(archive)


def test_stored_manifest_keeps_required_inputs_required(client: TestClient,
                                                        alice: Publisher) -> None:
    folder = write_function(alice.root, "req", "1.0.0", namespace="alice")
    manifest_file = folder / "function.yaml"
    manifest_file.write_text(manifest_file.read_text().replace("    default: 1\n", ""))
    archive, packed = build(folder)
    sent = Upload("alice", "req", manifest_file.read_text(), archive.read_bytes(),
                  envelope_for("alice/req@1.0.0", packed.digest, alice.key))
    assert alice.send(sent).status_code == 201
    stored = client.get("/api/v1/functions/alice/req/versions/1.0.0").json()["manifest"]
    assert "default" not in stored["spec"]["inputs"][0]
    assert parse_manifest(stored).spec.inputs[0].required
    assert parse_manifest(stored) == parse_manifest_text(manifest_file.read_text())
