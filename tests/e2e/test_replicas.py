"""Acceptance: two `hub serve` replicas on one PostgreSQL database and one S3 bucket serve the
same data. Each has its own data dir (nothing shared on disk); they share only the database,
the bucket and their settings (admin token, OCI token secret, rate limits). Operators run
`hub admin` from a third place with the same settings.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from fnhub.cli.main import main
from fnhub.core.signing import generate_key, save_private_key
from fnhub.hub.oci.service import UPLOAD_TTL
from tests.helpers import CLI, HubProcess, hub_database, start_hub, write_function
from tests.hub.factories import auth, error_code, make_publisher
from tests.oci.helpers import Pusher, digest, make_image
from tests.postgres import PostgresServer
from tests.s3 import S3Server, s3_env

pytestmark = pytest.mark.slow
RACERS = 20  # issue #2 asks for 20 concurrent publishes through the real server
SEARCH_LIMIT = 6  # per token (or address) and hour; tests search with tokens of their own


@dataclass
class Replicas:
    a: HubProcess
    b: HubProcess  # sends package downloads to presigned S3 URLs
    admin_token: str
    s3: S3Server
    bucket: str

    def key(self, blob_digest: str) -> str:
        """The bucket key of a blob."""
        hex_part = blob_digest.removeprefix("sha256:")
        return f"blobs/sha256/{hex_part[:2]}/{hex_part}"

    def keys(self, prefix: str = "") -> list[str]:
        listed = self.s3.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(obj["Key"] for obj in listed.get("Contents", []))

    def multipart_uploads(self) -> list[str]:
        listed = self.s3.client().list_multipart_uploads(Bucket=self.bucket)
        return sorted(upload["Key"] for upload in listed.get("Uploads", []))


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer,
             s3: S3Server) -> Iterator[Replicas]:
    database_url = postgres.create_database()
    bucket = s3.create_bucket()
    admin_token = "fnhub_" + secrets.token_urlsafe(32)
    shared = {**s3_env(s3, bucket, "blobs"), "FNHUB_SERVER_ADMIN_TOKEN": admin_token,
              "FNHUB_SERVER_OCI_TOKEN_SECRET": secrets.token_hex(32),
              "FNHUB_SERVER_RATE_LIMIT_SEARCH": f"{SEARCH_LIMIT}/hour"}
    root = tmp_path_factory.mktemp("replicas")
    index_key = root / "index-key.pem"  # the replicas sign indexes with one key
    save_private_key(generate_key(), index_key)
    shared["FNHUB_SERVER_INDEX_KEY"] = str(index_key)
    a = start_hub(root / "a", database_url=database_url, extra_env=shared)
    try:
        b = start_hub(root / "b", database_url=database_url, extra_env={
            **shared, "FNHUB_SERVER_S3_PRESIGNED_DOWNLOADS": "true"})
    except BaseException:
        a.stop()
        raise
    yield Replicas(a, b, admin_token, s3, bucket)
    a.stop()
    b.stop()


def test_publish_on_one_install_and_run_via_the_other(replicas: Replicas,
                                                      tmp_path: Path) -> None:
    admin = CLI(tmp_path / "admin", replicas.a.url, replicas.admin_token)
    token = admin.json("tokens", "create", "alice-ci", "--scope", "publish:alice",
                       "--user", "alice")["token"]
    on_a = CLI(tmp_path / "alice", replicas.a.url, token)
    on_a.ok("keys", "generate")
    on_a.ok("keys", "register", "--namespace", "alice")
    fn = write_function(tmp_path / "scale", name="scale", namespace="alice", version="1.0.0")
    published = on_a.json("publish", str(fn))
    assert replicas.key(published["package"]["digest"]) in replicas.keys("blobs/sha256/")
    assert not list((replicas.a.data_dir / "staging").iterdir())

    on_b = CLI(tmp_path / "alice", replicas.b.url, token)
    assert [i["name"] for i in on_b.json("search", "scale")["items"]] == ["scale"]
    index_a, index_b = (httpx.get(f"{hub.url}/api/v1/functions/alice/scale/index")
                        for hub in (replicas.a, replicas.b))
    assert index_a.status_code == 200 and index_a.content == index_b.content  # signed on read
    assert index_a.headers["etag"] == index_b.headers["etag"]
    package = httpx.get(f"{replicas.b.url}/api/v1/functions/alice/scale/versions/1.0.0/package")
    assert package.status_code == 307
    assert package.headers["location"].startswith(replicas.s3.endpoint)
    assert "installed alice/scale@1.0.0" in on_b.ok("install", "hub://alice/scale:1.0.0")
    data = tmp_path / "data.csv"
    data.write_text("value\n1\n2\n")
    ran = on_b.json("run", "hub://alice/scale:1.0.0", "-p", "factor=2", "-i", f"table={data}",
                    "--out", str(tmp_path / "run"))
    assert ran["outputs"]["total"] == 6.0
    streamed = httpx.get(f"{replicas.a.url}/api/v1/functions/alice/scale/versions/1.0.0/package")
    assert streamed.status_code == 200
    assert digest(streamed.content) == published["package"]["digest"]


def test_oci_push_on_one_pull_on_the_other(replicas: Replicas, tmp_path: Path) -> None:
    with httpx.Client(base_url=replicas.a.url, timeout=60) as http:
        carol = make_publisher(http, replicas.admin_token, "carol", tmp_path)
    repo = "carol/tool"
    image = make_image(2, seed="replicas")
    big = secrets.token_bytes(9 << 20)
    first_size = 6 << 20  # a part of the session's multipart upload; the rest a tail object
    with httpx.Client(base_url=replicas.a.url, timeout=60) as on_a, \
            httpx.Client(base_url=replicas.b.url, timeout=60) as on_b:
        pusher = Pusher(on_a, carol.token)
        # a chunked upload started on A, continued and finished on B
        location = on_a.post(f"/v2/{repo}/blobs/uploads/", headers=pusher.headers
                             ).headers["Location"]
        first = on_a.patch(location, content=big[:first_size], headers={
            **pusher.headers, "Content-Range": f"0-{first_size - 1}"})
        assert first.status_code == 202, first.text
        # the chunk lives in the bucket, as the first part of the session's multipart upload
        assert replicas.keys("blobs/uploads/") == []
        assert len(replicas.multipart_uploads()) == 1
        second = on_b.patch(location, content=big[first_size:], headers={
            **pusher.headers, "Content-Range": f"{first_size}-{len(big) - 1}"})
        assert second.status_code == 202, second.text
        assert len(replicas.keys("blobs/uploads/")) == 1  # 3 MiB: under S3's part minimum
        done = on_b.put(location, params={"digest": digest(big)}, headers=pusher.headers)
        assert done.status_code == 201, done.text
        assert replicas.keys("blobs/uploads/") == [] and replicas.multipart_uploads() == []
        # a registry token from A's token endpoint is accepted by B; behind the proxy both
        # see one Host, the token's audience, so A is asked with B's
        granted = on_a.get("/v2/token", params={
            "service": on_b.base_url.netloc.decode(), "scope": f"repository:{repo}:pull,push"},
            auth=("carol", carol.token), headers={"Host": on_b.base_url.netloc.decode()})
        assert granted.status_code == 200, granted.text
        jwt_pusher = Pusher(on_b, granted.json()["token"])
        manifest_digest = pusher.image(repo, "v1", image)

        pulled = on_b.get(f"/v2/{repo}/manifests/v1", headers={
            **jwt_pusher.headers, "Accept": image.media_type})
        assert pulled.status_code == 200, pulled.text
        assert pulled.content == image.manifest
        assert pulled.headers["Docker-Content-Digest"] == manifest_digest
        for blob_digest, content in [*image.blobs.items(), (digest(big), big)]:
            got = on_b.get(f"/v2/{repo}/blobs/{blob_digest}", headers=jwt_pusher.headers,
                           follow_redirects=True)  # B sends blob GETs to presigned S3 URLs
            assert [r.status_code for r in got.history] == [307]
            assert got.status_code == 200 and got.content == content
        tail = on_b.get(f"/v2/{repo}/blobs/{digest(big)}", follow_redirects=True, headers={
            **jwt_pusher.headers, "Range": f"bytes={len(big) - 10}-"})
        assert tail.status_code == 206 and tail.content == big[-10:]


def test_abandoned_upload_parts_are_deleted_from_the_bucket(replicas: Replicas,
                                                            tmp_path: Path) -> None:
    with httpx.Client(base_url=replicas.a.url, timeout=60) as http:
        dave = make_publisher(http, replicas.admin_token, "dave", tmp_path)
    pusher = Pusher(httpx.Client(base_url=replicas.a.url, timeout=60), dave.token)
    with pusher.http:
        location = pusher.http.post("/v2/dave/tool/blobs/uploads/", headers=pusher.headers
                                    ).headers["Location"]
        pusher.http.patch(location, content=b"abandoned", headers=pusher.headers)
        assert len(replicas.keys("blobs/uploads/")) == 1
        assert len(replicas.multipart_uploads()) == 1
        with hub_database(replicas.a) as conn:
            conn.execute(text("UPDATE oci_uploads SET updated_at = updated_at - :age"),
                         {"age": UPLOAD_TTL + timedelta(minutes=1)})
        with httpx.Client(base_url=replicas.b.url, timeout=60) as on_b:  # expiry on B
            fresh = on_b.post("/v2/dave/tool/blobs/uploads/", headers=pusher.headers)
            assert replicas.keys("blobs/uploads/") == []
            fresh_id = fresh.headers["Location"].rstrip("/").rsplit("/", 1)[1]
            assert replicas.multipart_uploads() == [f"blobs/uploads/{fresh_id}/blob"]
            cancelled = on_b.delete(fresh.headers["Location"], headers=pusher.headers)
            assert cancelled.status_code == 204, cancelled.text
        assert replicas.multipart_uploads() == []


def test_concurrent_publishes_across_replicas_have_one_winner(replicas: Replicas,
                                                              tmp_path: Path) -> None:
    with httpx.Client(base_url=replicas.a.url, timeout=60) as http:
        erin = make_publisher(http, replicas.admin_token, "erin", tmp_path)
    upload = erin.upload("race", "1.0.0")
    barrier = threading.Barrier(RACERS)

    def send(n: int) -> int:
        url = (replicas.a, replicas.b)[n % 2].url
        with httpx.Client(base_url=url, timeout=120) as http:
            barrier.wait()
            return http.post(upload.path, files=upload.files(),
                             headers={"Authorization": f"Bearer {erin.token}"}).status_code

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        statuses = list(pool.map(send, range(RACERS)))
    assert Counter(statuses) == {201: 1, 409: RACERS - 1}, statuses
    for replica in (replicas.a, replicas.b):
        versions = httpx.get(f"{replica.url}/api/v1/functions/erin/race").json()["versions"]
        assert [v["version"] for v in versions] == ["1.0.0"]
        assert not list((replica.data_dir / "staging").iterdir())


def test_search_rate_limit_is_counted_across_replicas(replicas: Replicas) -> None:
    """Requests alternate between the replicas: neither sees as many as the limit, yet
    together they reach it, and both refuse the next with the seconds left in the window."""
    created = httpx.post(f"{replicas.a.url}/api/v1/tokens", headers=auth(replicas.admin_token),
                         json={"name": "searcher", "scopes": ["read"]})
    assert created.status_code == 201, created.text
    searcher = auth(created.json()["token"])
    urls = [replica.url + "/api/v1/functions" for replica in (replicas.a, replicas.b)]
    allowed = [httpx.get(urls[n % 2], headers=searcher).status_code
               for n in range(SEARCH_LIMIT)]
    assert allowed == [200] * SEARCH_LIMIT
    for url in urls:  # each replica has now seen SEARCH_LIMIT / 2 + 1 requests
        refused = httpx.get(url, params={"q": "scale"}, headers=searcher)
        assert refused.status_code == 429, refused.text
        assert error_code(refused) == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    assert httpx.get(urls[0]).status_code == 200  # anyone else is counted apart


def _admin(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    """`hub admin ... --json` through the CLI's entry point in this process (a subprocess
    spends seconds importing), on the settings the environment holds: exit code, output."""
    capsys.readouterr()
    code = main(["admin", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_admin_fsck_and_gc_work_on_the_shared_database_and_bucket(
        replicas: Replicas, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Blobs altered or deleted in the bucket behind the replicas' back are found; gc leaves
    what rows need and what is younger than the grace period."""
    with httpx.Client(base_url=replicas.a.url, timeout=60) as http:
        frank = make_publisher(http, replicas.admin_token, "frank", tmp_path)
        kept, altered, missing = (frank.publish("fn", version)["package"]["digest"]
                                  for version in ("1.0.0", "1.1.0", "1.2.0"))
    bucket = replicas.s3.client()
    orphan = b"a blob whose version row never came"
    bucket.put_object(Bucket=replicas.bucket, Key=replicas.key(digest(orphan)), Body=orphan)
    original = {blob: bucket.get_object(Bucket=replicas.bucket, Key=replicas.key(blob)
                                        )["Body"].read() for blob in (altered, missing)}
    flipped = bytearray(original[altered])
    flipped[len(flipped) // 2] ^= 0xFF  # same size: only re-hashing notices
    bucket.put_object(Bucket=replicas.bucket, Key=replicas.key(altered), Body=bytes(flipped))
    bucket.delete_object(Bucket=replicas.bucket, Key=replicas.key(missing))
    # the operator's environment: the replicas' settings, a data dir of its own
    for name, value in {**replicas.a.settings_env,
                        "FNHUB_SERVER_DATA_DIR": str(tmp_path / "operator")}.items():
        monkeypatch.setenv(name, value)

    code, fsck = _admin(capsys, "fsck")
    assert code == 1 and fsck["ok"] is False
    problems = {(p["kind"], p["digest"]): p["detail"] for p in fsck["problems"]}
    assert set(problems) == {("digest_mismatch", altered), ("missing_blob", missing)}
    assert "package of frank/fn@1.2.0" in problems["missing_blob", missing]

    code, young = _admin(capsys, "gc", "--grace", "3600")
    assert code == 0 and young["deleted"] == [] and young["kept_recent"] == 1
    assert replicas.key(digest(orphan)) in replicas.keys("blobs/sha256/")
    code, old = _admin(capsys, "gc", "--grace", "0")
    assert code == 0 and old["deleted"] == [digest(orphan)]
    stored = replicas.keys("blobs/sha256/")
    assert replicas.key(digest(orphan)) not in stored
    assert {replicas.key(kept), replicas.key(altered)} <= set(stored)  # damaged, yet needed
    package = httpx.get(f"{replicas.b.url}/api/v1/functions/frank/fn/versions/1.0.0/package",
                        follow_redirects=True)  # B redirects to the bucket
    assert [r.status_code for r in package.history] == [307]
    assert package.status_code == 200 and digest(package.content) == kept
    for blob, data in original.items():  # repaired, for the module's other tests
        bucket.put_object(Bucket=replicas.bucket, Key=replicas.key(blob), Body=data)
