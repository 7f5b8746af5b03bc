"""Acceptance 3: the Distribution Spec's rules, replayed request by request against the hub.

Chunked uploads (416 out of order), digest checks (DIGEST_INVALID stores nothing), manifests
naming missing blobs (MANIFEST_BLOB_UNKNOWN), bad names (NAME_INVALID), tag pagination by
`Link`, ranged blob reads (206), and the error body everywhere under `/v2/`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from sqlalchemy import update
from sqlmodel import select

from fnhub.hub.context import Hub
from fnhub.hub.models import utcnow
from fnhub.hub.oci import uploads
from fnhub.hub.oci.models import OciRepository, OciUpload
from fnhub.hub.oci.uploads import UPLOAD_TTL
from tests.helpers import blob_digests, leftover_names
from tests.oci.helpers import (
    DOCKER_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Pusher,
    descriptor,
    digest,
    errors,
    make_image,
)

REPO = "alice/demo"


def _stored(hub: Hub) -> tuple[list[str], list[str]]:
    return blob_digests(hub.store), [Path(name).name for name in leftover_names(hub.store)]


def _session(alice: Pusher, repo: str = REPO) -> str:
    response = alice.http.post(f"/v2/{repo}/blobs/uploads/", headers=alice.headers)
    assert response.status_code == 202, response.text
    assert response.headers["Range"] == "0-0"
    location: str = response.headers["Location"]
    assert location.startswith(f"/v2/{repo}/blobs/uploads/")
    return location


def test_chunked_upload_refuses_an_out_of_order_chunk_with_416(alice: Pusher) -> None:
    data = bytes(range(256)) * 40
    location = _session(alice)
    first = alice.http.patch(location, content=data[:4000], headers={
        **alice.headers, "Content-Range": "0-3999", "Content-Type": "application/octet-stream"})
    assert first.status_code == 202, first.text
    assert first.headers["Range"] == "0-3999"
    location = first.headers["Location"]

    skipped = alice.http.patch(location, content=data[8000:], headers={
        **alice.headers, "Content-Range": f"8000-{len(data) - 1}"})
    assert skipped.status_code == 416
    assert errors(skipped) == ["BLOB_UPLOAD_INVALID"]
    assert skipped.headers["Range"] == "0-3999"
    status = alice.http.get(location, headers=alice.headers)
    assert status.status_code == 204 and status.headers["Range"] == "0-3999"

    second = alice.http.patch(location, content=data[4000:8000], headers={
        **alice.headers, "Content-Range": "4000-7999"})
    assert second.status_code == 202 and second.headers["Range"] == "0-7999"
    done = alice.http.put(second.headers["Location"], params={"digest": digest(data)},
                          content=data[8000:], headers=alice.headers)
    assert done.status_code == 201, done.text
    assert done.headers["Docker-Content-Digest"] == digest(data)
    assert alice.http.get(done.headers["Location"]).content == data


def test_a_wrong_digest_is_digest_invalid_and_stores_nothing(alice: Pusher, hub: Hub) -> None:
    before = _stored(hub)
    data = b"the bytes that were sent"
    claimed = digest(b"other bytes")

    whole = alice.http.post(f"/v2/{REPO}/blobs/uploads/", params={"digest": claimed},
                            content=data, headers=alice.headers)
    assert whole.status_code == 400 and errors(whole) == ["DIGEST_INVALID"]

    location = _session(alice)
    alice.http.patch(location, content=data[:10], headers=alice.headers)
    chunked = alice.http.put(location, params={"digest": claimed}, content=data[10:],
                             headers=alice.headers)
    assert chunked.status_code == 400 and errors(chunked) == ["DIGEST_INVALID"]
    assert errors(alice.http.get(location, headers=alice.headers)) == ["BLOB_UPLOAD_UNKNOWN"]

    for ref in (claimed, digest(data)):
        head = alice.http.head(f"/v2/{REPO}/blobs/{ref}")
        assert head.status_code == 404 and not head.content
    assert errors(alice.http.get(f"/v2/{REPO}/blobs/{digest(data)}")) == ["BLOB_UNKNOWN"]
    assert _stored(hub) == before


def test_a_manifest_naming_a_missing_blob_is_manifest_blob_unknown(alice: Pusher,
                                                                  hub: Hub) -> None:
    image = make_image(2)
    missing = next(iter(image.blobs))
    for key, data in image.blobs.items():
        if key != missing:
            assert alice.blob(REPO, data).status_code == 201
    response = alice.manifest(REPO, "v1", image.manifest)
    assert response.status_code == 400
    assert errors(response) == ["MANIFEST_BLOB_UNKNOWN"]
    assert response.json()["errors"][0]["detail"] == {"digest": missing}
    assert errors(alice.http.get(f"/v2/{REPO}/manifests/v1")) == ["MANIFEST_UNKNOWN"]

    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": [descriptor(OCI_MANIFEST, image.manifest)]}).encode()
    response = alice.manifest(REPO, "multi", index, OCI_INDEX)
    assert errors(response) == ["MANIFEST_BLOB_UNKNOWN"]


def test_bad_names_tags_and_digests(alice: Pusher) -> None:
    http = alice.http
    for path in ("/v2/Alice/demo/tags/list", "/v2/demo/tags/list",
                 "/v2/alice/de..mo/manifests/latest", "/v2/alice/-x/blobs/uploads/"):
        response = http.request("POST" if path.endswith("/") else "GET", path,
                                headers=alice.headers)
        assert response.status_code == 400, path
        assert errors(response) == ["NAME_INVALID"], path
    assert errors(http.get(f"/v2/{REPO}/blobs/sha256:abc")) == ["DIGEST_INVALID"]
    assert errors(http.get(f"/v2/{REPO}/blobs/sha512:" + "a" * 128)) == ["DIGEST_INVALID"]
    assert errors(alice.manifest(REPO, ".bad", b"{}")) == ["TAG_INVALID"]
    assert errors(http.get("/v2/nobody/here/tags/list")) == ["NAME_UNKNOWN"]
    unknown = http.get("/v2/alice/demo/nothing")
    assert unknown.status_code == 404 and errors(unknown) == ["UNSUPPORTED"]


def test_tag_pagination_follows_link(alice: Pusher) -> None:
    image = make_image(1)
    tags = ["v1", "v10", "v2", "latest", "stable", "a.b-c_d"]
    for tag in tags:
        alice.image(REPO, tag, image)
    seen, url, pages = [], f"/v2/{REPO}/tags/list?n=2", 0
    while url:
        response = alice.http.get(url)
        assert response.status_code == 200
        body = response.json()
        assert body["name"] == REPO and len(body["tags"]) <= 2
        seen += body["tags"]
        pages += 1
        link = response.headers.get("Link")
        url = re.fullmatch(r'<(.+)>; rel="next"', link)[1] if link else ""  # type: ignore[index]
    assert seen == sorted(tags) and pages == 3
    everything = alice.http.get(f"/v2/{REPO}/tags/list").json()["tags"]
    assert everything == sorted(tags)
    assert alice.http.get(f"/v2/{REPO}/tags/list?n=0").json()["tags"] == []
    after = alice.http.get(f"/v2/{REPO}/tags/list", params={"last": "stable"}).json()["tags"]
    assert after == ["v1", "v10", "v2"]
    assert errors(alice.http.get(f"/v2/{REPO}/tags/list?n=x")) == ["PAGINATION_NUMBER_INVALID"]


def test_range_reads_return_206_with_those_bytes(alice: Pusher) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB: ranges cross the registry's 1 MiB read chunks
    assert alice.blob(REPO, data).status_code == 201
    url = f"/v2/{REPO}/blobs/{digest(data)}"
    full = alice.http.get(url)
    assert full.status_code == 200 and full.content == data
    assert full.headers["Docker-Content-Digest"] == digest(data)
    assert full.headers["Accept-Ranges"] == "bytes"
    for header, start, end in (("bytes=0-9", 0, 9), ("bytes=1048570-1048590", 1048570, 1048590),
                               ("bytes=2000000-", 2000000, len(data) - 1),
                               ("bytes=-100", len(data) - 100, len(data) - 1),
                               ("bytes=5-99999999", 5, len(data) - 1)):
        part = alice.http.get(url, headers={"Range": header})
        assert part.status_code == 206, header
        assert part.content == data[start:end + 1], header
        assert part.headers["Content-Range"] == f"bytes {start}-{end}/{len(data)}"
    beyond = alice.http.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(data)}"
    head = alice.http.head(url, headers={"Range": "bytes=10-19"})
    assert head.status_code == 206 and head.headers["Content-Length"] == "10"


def test_manifests_are_stored_byte_exact_in_all_four_media_types(alice: Pusher) -> None:
    oci, docker = make_image(2, seed="o"), make_image(2, seed="d", docker=True)
    oci_digest = alice.image(REPO, "oci", oci)
    docker_digest = alice.image(REPO, "docker", docker)
    lists = {
        OCI_INDEX: json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            descriptor(OCI_MANIFEST, oci.manifest)]}, indent=1).encode(),
        DOCKER_LIST: json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [
            descriptor(docker.media_type, docker.manifest)]}, indent=3).encode(),
    }
    for media_type, body in lists.items():
        response = alice.manifest(REPO, media_type.split(".")[-2], body, media_type)
        assert response.status_code == 201, response.text
    for ref, body, media_type in (
            ("oci", oci.manifest, OCI_MANIFEST), ("docker", docker.manifest, docker.media_type),
            (oci_digest, oci.manifest, OCI_MANIFEST),
            (docker_digest, docker.manifest, docker.media_type),
            ("index", lists[OCI_INDEX], OCI_INDEX), ("list", lists[DOCKER_LIST], DOCKER_LIST)):
        got = alice.http.get(f"/v2/{REPO}/manifests/{ref}")
        assert got.status_code == 200 and got.content == body, ref
        assert got.headers["Content-Type"] == media_type
        assert got.headers["Docker-Content-Digest"] == digest(body)
        head = alice.http.head(f"/v2/{REPO}/manifests/{ref}")
        assert head.headers["Content-Length"] == str(len(body)) and not head.content


def test_manifest_checks(alice: Pusher) -> None:
    image = make_image(1)
    alice.image(REPO, "ok", image)
    wrong_ref = alice.manifest(REPO, digest(b"x"), image.manifest)
    assert wrong_ref.status_code == 400 and errors(wrong_ref) == ["DIGEST_INVALID"]
    mismatch = alice.manifest(REPO, "t", image.manifest, OCI_INDEX)
    assert errors(mismatch) == ["MANIFEST_INVALID"]
    assert "mediaType" in mismatch.json()["errors"][0]["message"]
    assert errors(alice.manifest(REPO, "t", b"not json")) == ["MANIFEST_INVALID"]
    assert errors(alice.manifest(REPO, "t", b'{"schemaVersion": 2}', "text/plain")) == [
        "MANIFEST_INVALID"]
    doc = json.loads(image.manifest)
    doc["layers"][0]["size"] += 1
    assert errors(alice.manifest(REPO, "t", json.dumps(doc).encode())) == ["MANIFEST_INVALID"]


def test_manifests_of_4_mib_are_accepted_and_larger_ones_refused(alice: Pusher) -> None:
    image = make_image(1)
    alice.image(REPO, "base", image)
    doc = json.loads(image.manifest)
    doc["annotations"] = {"padding": ""}
    overhead = len(json.dumps(doc).encode())
    doc["annotations"]["padding"] = "x" * (4 * 1024 * 1024 - overhead)
    big = json.dumps(doc).encode()
    assert len(big) == 4 * 1024 * 1024
    response = alice.manifest(REPO, "big", big)
    assert response.status_code == 201, response.text
    assert alice.http.get(f"/v2/{REPO}/manifests/big").content == big
    doc["annotations"]["padding"] += "x"
    too_big = alice.manifest(REPO, "bigger", json.dumps(doc).encode())
    assert too_big.status_code == 413 and errors(too_big) == ["SIZE_INVALID"]


def test_referrers_list_manifests_with_a_subject_filtered_by_artifact_type(
        alice: Pusher) -> None:
    image = make_image(1)
    subject_digest = alice.image(REPO, "app", image)
    subject = descriptor(OCI_MANIFEST, image.manifest)
    empty = b"{}"
    assert alice.blob(REPO, empty).status_code == 201
    kinds = {"application/vnd.example.sbom": b"sbom", "application/vnd.example.sig": b"sig"}
    pushed = {}
    for artifact_type, content in kinds.items():
        assert alice.blob(REPO, content).status_code == 201
        body = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
            "config": descriptor("application/vnd.oci.empty.v1+json", empty),
            "layers": [descriptor("application/octet-stream", content)],
            "subject": subject, "annotations": {"kind": artifact_type}}).encode()
        response = alice.manifest(REPO, digest(body), body)
        assert response.status_code == 201, response.text
        assert response.headers["OCI-Subject"] == subject_digest
        pushed[artifact_type] = digest(body)

    listing = alice.http.get(f"/v2/{REPO}/referrers/{subject_digest}")
    assert listing.status_code == 200
    assert listing.headers["Content-Type"] == OCI_INDEX
    index = listing.json()
    assert index["mediaType"] == OCI_INDEX and index["schemaVersion"] == 2
    assert {m["digest"]: m["artifactType"] for m in index["manifests"]} == {
        d: t for t, d in pushed.items()}
    assert all(m["annotations"] == {"kind": m["artifactType"]} for m in index["manifests"])
    assert "OCI-Filters-Applied" not in listing.headers

    only = alice.http.get(f"/v2/{REPO}/referrers/{subject_digest}",
                          params={"artifactType": "application/vnd.example.sig"})
    assert only.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in only.json()["manifests"]] == [
        pushed["application/vnd.example.sig"]]
    nothing = alice.http.get(f"/v2/{REPO}/referrers/{digest(b'no such subject')}")
    assert nothing.status_code == 200 and nothing.json()["manifests"] == []


def test_cross_repository_mount(alice: Pusher, bob: Pusher) -> None:
    data = b"shared layer"
    assert alice.blob(REPO, data).status_code == 201
    mounted = alice.http.post("/v2/alice/other/blobs/uploads/", headers=alice.headers,
                              params={"mount": digest(data), "from": REPO})
    assert mounted.status_code == 201
    assert mounted.headers["Location"] == f"/v2/alice/other/blobs/{digest(data)}"
    assert alice.http.get(f"/v2/alice/other/blobs/{digest(data)}").content == data
    # a blob the source does not hold: the registry opens an upload session instead
    fallback = alice.http.post("/v2/alice/other/blobs/uploads/", headers=alice.headers,
                               params={"mount": digest(b"nope"), "from": REPO})
    assert fallback.status_code == 202 and "/blobs/uploads/" in fallback.headers["Location"]
    # blobs are per repository: bob's repository cannot read alice's until he pushes it
    assert bob.http.head(f"/v2/bob/copy/blobs/{digest(data)}").status_code == 404
    bob_mount = bob.http.post("/v2/bob/copy/blobs/uploads/", headers=bob.headers,
                              params={"mount": digest(data), "from": REPO})
    assert bob_mount.status_code == 201


def _repositories(hub: Hub) -> list[str]:
    with hub.db.read() as session:
        return sorted(session.exec(select(OciRepository.name)).all())


def _catalog(alice: Pusher) -> list[str]:
    listed: list[str] = alice.http.get("/v2/_catalog").json()["repositories"]
    return listed


def test_a_mount_falling_back_to_an_upload_leaves_no_empty_repository(
        hub: Hub, alice: Pusher) -> None:
    """While the fallback upload runs, the repository is not listed; if the upload is
    cancelled or expires, no row is left; once a blob lands, it is listed."""
    assert alice.blob(REPO, b"layer").status_code == 201
    for end in ("cancel", "expire", "wrong digest", "finish"):
        fallback = alice.http.post("/v2/alice/fresh/blobs/uploads/", headers=alice.headers,
                                   params={"mount": digest(b"missing"), "from": REPO})
        assert fallback.status_code == 202, fallback.text
        assert _catalog(alice) == [REPO]
        location = fallback.headers["Location"]
        if end == "cancel":
            assert alice.http.delete(location, headers=alice.headers).status_code == 204
        elif end == "expire":
            with hub.db.write() as session:
                session.execute(update(OciUpload).values(updated_at=utcnow() - 2 * UPLOAD_TTL))
            assert uploads.expire_uploads(hub) == 1
        else:
            data = b"missing" if end == "finish" else b"other bytes"
            done = alice.http.put(location, params={"digest": digest(b"missing")},
                                  content=data, headers=alice.headers)
            assert done.status_code == (201 if end == "finish" else 400), done.text
        present = [REPO, "alice/fresh"] if end == "finish" else [REPO]
        assert _repositories(hub) == present, end
        assert _catalog(alice) == present, end


def test_deleting_the_last_content_drops_the_repository(hub: Hub, alice: Pusher) -> None:
    assert alice.blob("alice/brief", b"x").status_code == 201
    assert alice.http.delete(f"/v2/alice/brief/blobs/{digest(b'x')}",
                             headers=alice.headers).status_code == 202
    assert "alice/brief" not in _repositories(hub)
    assert errors(alice.http.get("/v2/alice/brief/tags/list")) == ["NAME_UNKNOWN"]


def test_deleting_tags_manifests_and_blobs(alice: Pusher) -> None:
    image = make_image(1)
    ref = alice.image(REPO, "one", image)
    alice.manifest(REPO, "two", image.manifest)
    assert alice.http.delete(f"/v2/{REPO}/manifests/one", headers=alice.headers
                             ).status_code == 202
    assert alice.http.get(f"/v2/{REPO}/tags/list").json()["tags"] == ["two"]
    assert alice.http.get(f"/v2/{REPO}/manifests/{ref}").status_code == 200
    assert alice.http.delete(f"/v2/{REPO}/manifests/{ref}", headers=alice.headers
                             ).status_code == 202
    assert errors(alice.http.get(f"/v2/{REPO}/manifests/two")) == ["MANIFEST_UNKNOWN"]
    assert alice.http.get(f"/v2/{REPO}/tags/list").json()["tags"] == []
    blob = next(iter(image.blobs))
    assert alice.http.delete(f"/v2/{REPO}/blobs/{blob}", headers=alice.headers
                             ).status_code == 202
    assert errors(alice.http.get(f"/v2/{REPO}/blobs/{blob}")) == ["BLOB_UNKNOWN"]
    cancelled = _session(alice)
    assert alice.http.delete(cancelled, headers=alice.headers).status_code == 204
    assert errors(alice.http.get(cancelled, headers=alice.headers)) == ["BLOB_UPLOAD_UNKNOWN"]


def test_catalog_lists_repositories_with_pagination(alice: Pusher) -> None:
    for repo in ("alice/c", "alice/a", "alice/b/nested"):
        alice.blob(repo, b"x")
    first = alice.http.get("/v2/_catalog?n=2")
    assert first.json() == {"repositories": ["alice/a", "alice/b/nested"]}
    assert first.headers["Link"] == '</v2/_catalog?n=2&last=alice%2Fb%2Fnested>; rel="next"'
    second = alice.http.get(first.headers["Link"][1:].split(">")[0])
    assert second.json() == {"repositories": ["alice/c"]} and "Link" not in second.headers
