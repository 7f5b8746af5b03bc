"""Acceptance 1 and 2: real OCI clients against a real hub process.

`skopeo` copies multi-layer images (an OCI image, a two-platform index, a Docker schema 2
image) from local OCI layouts to the hub and back, byte for byte; `oras` (the Python package)
pushes and pulls an artifact with its own artifactType and attaches a signature by `subject`,
which the referrers API then lists. The registry's Docker token flow is what both use to log
in with a hub API token.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import oras.client
import oras.defaults
import oras.oci
import pytest

from tests.helpers import HubProcess, start_hub
from tests.oci.conftest import require_tool
from tests.oci.helpers import (
    DOCKER_MANIFEST,
    auth,
    digest,
    make_image,
    make_index,
    write_layout,
)

pytestmark = pytest.mark.slow


def _mint(hub: HubProcess, user: str, scope: str) -> str:
    response = httpx.post(f"{hub.url}/api/v1/tokens", headers=auth(hub.admin_token), json={
        "name": f"{user}-oci", "user": user, "scopes": [scope]})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, str]]:
    hub = start_hub(tmp_path_factory.mktemp("public") / "data")
    yield hub, _mint(hub, "alice", "publish:alice")
    hub.stop()


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, str]]:
    hub = start_hub(tmp_path_factory.mktemp("private") / "data",
                    extra_env={"FNHUB_SERVER_PRIVATE": "true"})
    yield hub, _mint(hub, "alice", "publish:alice")
    hub.stop()


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool("skopeo"), *args], capture_output=True, text=True,
                          timeout=120, check=False)


def skopeo_ok(*args: str) -> str:
    proc = skopeo(*args)
    assert proc.returncode == 0, f"skopeo {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _layout_blobs(layout: Path) -> set[str]:
    return {p.name for p in (layout / "blobs" / "sha256").iterdir()}


def _layout_top(layout: Path) -> str:
    [entry] = json.loads((layout / "index.json").read_text())["manifests"]
    ref: str = entry["digest"]
    return ref


def _round_trip(host: str, repo: str, tag: str, source: Path, back: Path, *creds: str,
                all_images: bool = False) -> None:
    """oci:source -> the hub -> oci:back."""
    push = ["--dest-tls-verify=false", *(["--dest-creds", creds[0]] if creds else [])]
    pull = ["--src-tls-verify=false", *(["--src-creds", creds[0]] if creds else [])]
    every = ["--all"] if all_images else []
    skopeo_ok("copy", *every, *push, f"oci:{source}:{tag}", f"docker://{host}/{repo}:{tag}")
    skopeo_ok("copy", *every, *pull, f"docker://{host}/{repo}:{tag}", f"oci:{back}:{tag}")


def test_skopeo_copies_to_the_hub_and_back_with_identical_digests(
        public: tuple[HubProcess, str], tmp_path: Path) -> None:
    hub, token = public
    host = urlsplit(hub.url).netloc
    creds = f"alice:{token}"

    image = make_image(3, seed="skopeo")
    source = write_layout(tmp_path / "src", "v1", [image])
    _round_trip(host, "alice/app", "v1", source, tmp_path / "back", creds)
    assert _layout_top(tmp_path / "back") == image.digest
    assert _layout_blobs(tmp_path / "back") == _layout_blobs(source)
    raw = skopeo_ok("inspect", "--tls-verify=false", "--raw", f"docker://{host}/alice/app:v1")
    assert raw.encode() == image.manifest
    info = json.loads(skopeo_ok("inspect", "--tls-verify=false",
                                f"docker://{host}/alice/app:v1"))
    assert info["Digest"] == image.digest
    assert info["Layers"] == [d["digest"] for d in json.loads(image.manifest)["layers"]]
    assert info["Labels"] == {"seed": "skopeo"}

    platforms = [make_image(2, seed="amd"), make_image(2, seed="arm", arch="arm64")]
    index = make_index(platforms)
    multi = write_layout(tmp_path / "multi", "m", platforms, index)
    _round_trip(host, "alice/app", "m", multi, tmp_path / "multi-back", creds, all_images=True)
    assert _layout_top(tmp_path / "multi-back") == digest(index)
    assert _layout_blobs(tmp_path / "multi-back") == _layout_blobs(multi)

    skopeo_ok("copy", "--format", "v2s2", "--dest-tls-verify=false", "--dest-creds", creds,
              f"oci:{source}:v1", f"docker://{host}/alice/app:docker")
    pushed = skopeo_ok("inspect", "--tls-verify=false", "--raw",
                       f"docker://{host}/alice/app:docker").encode()
    assert json.loads(pushed)["mediaType"] == DOCKER_MANIFEST
    skopeo_ok("copy", "--src-tls-verify=false", f"docker://{host}/alice/app:docker",
              f"dir:{tmp_path / 'docker-dir'}")
    assert (tmp_path / "docker-dir" / "manifest.json").read_bytes() == pushed

    tags = json.loads(skopeo_ok("list-tags", "--tls-verify=false", f"docker://{host}/alice/app"))
    assert sorted(tags["Tags"]) == ["docker", "m", "v1"]


def test_pushing_without_credentials_is_refused_with_the_bearer_challenge(
        public: tuple[HubProcess, str], tmp_path: Path) -> None:
    hub, _ = public
    host = urlsplit(hub.url).netloc
    source = write_layout(tmp_path / "src", "v1", [make_image(2, seed="anonymous")])
    proc = skopeo("copy", "--dest-tls-verify=false", f"oci:{source}:v1",
                  f"docker://{host}/alice/anonymous:v1")
    assert proc.returncode != 0 and "unauthorized" in proc.stderr.lower()
    response = httpx.post(f"{hub.url}/v2/alice/anonymous/blobs/uploads/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="{hub.url}/v2/token",service="{host}",'
        'scope="repository:alice/anonymous:pull,push"')
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert skopeo("inspect", "--tls-verify=false",
                  f"docker://{host}/alice/anonymous:v1").returncode != 0


def test_skopeo_with_credentials_against_a_private_hub(private: tuple[HubProcess, str],
                                                       tmp_path: Path) -> None:
    hub, token = private
    host = urlsplit(hub.url).netloc
    creds = f"alice:{token}"
    image = make_image(3, seed="private")
    source = write_layout(tmp_path / "src", "v1", [image])

    refused = skopeo("copy", "--dest-tls-verify=false", f"oci:{source}:v1",
                     f"docker://{host}/alice/secret:v1")
    assert refused.returncode != 0 and "401" in refused.stderr
    _round_trip(host, "alice/secret", "v1", source, tmp_path / "back", creds)
    assert _layout_top(tmp_path / "back") == image.digest
    assert _layout_blobs(tmp_path / "back") == _layout_blobs(source)
    info = json.loads(skopeo_ok("inspect", "--tls-verify=false", "--creds", creds,
                                f"docker://{host}/alice/secret:v1"))
    assert info["Digest"] == image.digest
    tags = json.loads(skopeo_ok("list-tags", "--tls-verify=false", "--creds", creds,
                                f"docker://{host}/alice/secret"))
    assert tags["Tags"] == ["v1"]
    anonymous = skopeo("inspect", "--tls-verify=false", f"docker://{host}/alice/secret:v1")
    assert anonymous.returncode != 0
    assert httpx.get(f"{hub.url}/v2/alice/secret/tags/list").status_code == 401


ARTIFACT_TYPE = "application/vnd.fnhub.example.report+json"
SIGNATURE_TYPE = "application/vnd.fnhub.example.signature.v1+json"


def _oras(hub: HubProcess, token: str) -> oras.client.OrasClient:
    client = oras.client.OrasClient(hostname=urlsplit(hub.url).netloc, insecure=True)
    client.auth.set_basic_auth("alice", token)
    return client


def test_oras_pushes_and_pulls_an_artifact_and_lists_its_signature_as_referrer(
        public: tuple[HubProcess, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub, token = public
    host = urlsplit(hub.url).netloc
    monkeypatch.chdir(tmp_path)  # oras pushes files from the working directory
    Path("report.json").write_text(json.dumps({"accuracy": 0.97}))
    Path("empty.json").write_bytes(b"{}")
    client = _oras(hub, token)
    target = client.get_container(f"{host}/alice/report:v1")
    layer = oras.oci.NewLayer("report.json", media_type="application/json")
    layer["annotations"] = {oras.defaults.annotation_title: "report.json"}
    empty = oras.oci.NewLayer("empty.json", media_type="application/vnd.oci.empty.v1+json")
    for path, descriptor in (("report.json", layer), ("empty.json", empty)):
        assert client.upload_blob(path, target, descriptor, do_chunked=True).status_code == 201
    manifest = {**oras.oci.NewManifest(), "artifactType": ARTIFACT_TYPE, "config": empty,
                "layers": [layer]}
    response = client.upload_manifest(manifest, target)
    assert response.status_code == 201, response.text
    artifact_digest = response.headers["Docker-Content-Digest"]

    puller = _oras(hub, token)
    files = puller.pull(target=f"{host}/alice/report:v1", outdir=str(tmp_path / "out"))
    assert [Path(f).read_text() for f in files] == [Path("report.json").read_text()]
    assert puller.get_manifest(f"{host}/alice/report:v1")["artifactType"] == ARTIFACT_TYPE

    Path("signature.sig").write_bytes(b"signed: " + artifact_digest.encode())
    Path("signature-config.json").write_text("{}")
    subject = oras.oci.Subject(mediaType=oras.defaults.default_manifest_media_type,
                               digest=artifact_digest, size=int(response.request.headers[
                                   "Content-Length"]))
    signed = _oras(hub, token).push(
        target=f"{host}/alice/report:v1-signature", files=["signature.sig"],
        manifest_config=f"signature-config.json:{SIGNATURE_TYPE}", subject=subject,
        do_chunked=True)
    assert signed.status_code == 201
    assert signed.headers["OCI-Subject"] == artifact_digest
    signature_digest = signed.headers["Docker-Content-Digest"]

    listing = httpx.get(f"{hub.url}/v2/alice/report/referrers/{artifact_digest}")
    assert listing.status_code == 200
    assert [(m["digest"], m["artifactType"]) for m in listing.json()["manifests"]] == [
        (signature_digest, SIGNATURE_TYPE)]
    other = httpx.get(f"{hub.url}/v2/alice/report/referrers/{artifact_digest}",
                      params={"artifactType": ARTIFACT_TYPE})
    assert other.json()["manifests"] == []

