"""Acceptance 4: `hub build` through the docker SDK against Podman's service, `hub publish
--image`, the image digest in the signed statement, and `hub verify` catching an altered
manifest in the hub's storage.

No base image can be pulled here (no registry but the package indexes is reachable), so the
test function's image is `FROM scratch`: the files and fnhub's runtime, without Python. The
fixture starts `podman system service` on its own socket, with a registries.conf marking the
test hub (plain HTTP on loopback) as an insecure registry, the way an operator would.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import docker
import httpx
import pytest
import yaml

from fnhub.core.packaging import read_member
from tests.helpers import CLI, HubProcess, start_hub, write_function
from tests.oci.helpers import auth

pytestmark = pytest.mark.slow

ENTRYPOINT = ["python", "-m", "fnhub.runtime"]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    process = start_hub(tmp_path_factory.mktemp("hub") / "data")
    yield process
    process.stop()


def _function(root: Path, version: str) -> Path:
    folder = write_function(root / f"scale-{version}", name="scale", namespace="carol",
                            version=version)
    manifest = folder / "function.yaml"
    manifest.write_text(manifest.read_text().replace(
        "description: Scale the value column of a CSV table",
        'description: "Scales $VALUE \\"columns\\""') + "  image: {base: scratch}\n")
    return folder


def _registry_json(hub: HubProcess, path: str) -> tuple[bytes, dict]:
    response = httpx.get(f"{hub.url}/v2/{path}")
    assert response.status_code == 200, response.text
    return response.content, json.loads(response.content)


def _image_files(hub: HubProcess, repository: str, manifest: dict) -> set[str]:
    names = set()
    for layer in manifest["layers"]:
        blob = httpx.get(f"{hub.url}/v2/{repository}/blobs/{layer['digest']}").content
        assert "sha256:" + hashlib.sha256(blob).hexdigest() == layer["digest"]
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
            names |= {m.name.lstrip("./") for m in tar.getmembers() if m.isfile()}
    return names


def test_hub_build_makes_a_labelled_image_through_the_docker_sdk(
        carol: CLI, docker_host: str, tmp_path: Path) -> None:
    folder = _function(tmp_path, "0.9.0")
    package_digest = carol.json("pack", str(folder), "-o", str(tmp_path / "p.tar.gz"))["digest"]
    built = carol.json("build", str(folder))
    host = urlsplit(carol.hub_url or "").netloc
    assert built["image"] == f"{host}/carol/scale:0.9.0" and built["digest"] is None
    image = docker.DockerClient(base_url=docker_host).images.get(built["image"])
    assert image.id == built["id"]
    config = image.attrs["Config"]
    assert config["Entrypoint"] == ENTRYPOINT
    assert config["WorkingDir"] == "/opt/fnhub/function"
    labels = config["Labels"]
    assert labels["io.fnhub.package.digest"] == package_digest
    assert labels["io.fnhub.function"] == "carol/scale"
    assert labels["org.opencontainers.image.version"] == "0.9.0"
    assert labels["io.fnhub.entrypoint"] == "scale.py:scale"
    assert labels["org.opencontainers.image.description"] == 'Scales $VALUE "columns"'
    interface = json.loads(labels["io.fnhub.interface"])
    assert [p["name"] for p in interface["inputs"]] == ["table", "factor"]
    assert [p["name"] for p in interface["outputs"]] == ["scaled", "total"]


def test_publish_image_signs_its_digest_and_verify_catches_an_altered_manifest(
        hub: HubProcess, carol: CLI, tmp_path: Path) -> None:
    folder = _function(tmp_path, "1.0.0")
    detail = carol.json("publish", str(folder), "--image")
    host = urlsplit(hub.url).netloc
    image_ref, image_digest = detail["image"]["ref"], detail["image"]["digest"]
    assert image_ref == f"{host}/carol/scale:1.0.0"

    # the registry serves that manifest for the tag, and the image holds the function
    raw, manifest = _registry_json(hub, "carol/scale/manifests/1.0.0")
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == image_digest
    files = _image_files(hub, "carol/scale", manifest)
    assert {"opt/fnhub/function/function.yaml", "opt/fnhub/function/scale.py",
            "opt/fnhub/lib/fnhub/runtime.py"} <= files
    _, config = _registry_json(hub, f"carol/scale/blobs/{manifest['config']['digest']}")
    assert config["config"]["Entrypoint"] == ENTRYPOINT

    # the signed statement names the image digest as its second subject
    envelope = httpx.get(f"{hub.url}/api/v1/functions/carol/scale/versions/1.0.0/attestations"
                         ).json()["envelopes"][0]
    subjects = json.loads(base64.b64decode(envelope["payload"]))["subject"]
    assert {"name": "carol/scale:1.0.0",
            "digest": {"sha256": image_digest.removeprefix("sha256:")}} in subjects
    assert subjects[0]["digest"]["sha256"] == detail["package"]["digest"].removeprefix("sha256:")
    # ... and so does the package's function.yaml
    package = tmp_path / "published.tar.gz"
    package.write_bytes(httpx.get(
        f"{hub.url}/api/v1/functions/carol/scale/versions/1.0.0/package").content)
    image = yaml.safe_load(read_member(package, "function.yaml"))["spec"]["image"]
    assert image == {"base": "scratch", "ref": image_ref, "digest": image_digest}

    verified = carol.json("verify", "hub://carol/scale:1.0.0")
    assert verified["image"] == f"{image_ref}@{image_digest}"
    early = CLI(tmp_path / "early", hub.url)  # anonymous: the public registry serves pulls
    assert "installed carol/scale@1.0.0" in early.ok("install", "hub://carol/scale:1.0.0")

    # the published version pins its tag: the registry refuses to move it
    moved = dict(manifest, annotations={"moved": "yes"})
    response = httpx.put(f"{hub.url}/v2/carol/scale/manifests/1.0.0",
                         content=json.dumps(moved).encode(),
                         headers={**auth(carol.token or ""), "Content-Type": manifest["mediaType"]})
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "DENIED"

    # someone with the hub's storage alters the manifest: verify and install refuse it
    hexdigest = image_digest.removeprefix("sha256:")
    [stored] = [p for p in hub.data_dir.rglob(hexdigest) if p.is_file()]
    stored.write_bytes(raw.replace(b'"schemaVersion":2', b'"schemaVersion": 2', 1)
                       if b'"schemaVersion":2' in raw else raw + b"\n")
    carol.fails("verify", "hub://carol/scale:1.0.0", match=image_digest)
    late = CLI(tmp_path / "late", hub.url)
    late.fails("install", "hub://carol/scale:1.0.0", match="signed statement names")
    assert "carol/scale" not in late.ok("list")


def test_hub_build_push_reports_the_registry_digest(hub: HubProcess, carol: CLI,
                                                   tmp_path: Path) -> None:
    pushed = carol.json("build", str(_function(tmp_path, "1.1.0")), "--push")
    raw, _ = _registry_json(hub, "carol/scale/manifests/1.1.0")
    assert pushed["digest"] == "sha256:" + hashlib.sha256(raw).hexdigest()
    unpublished = httpx.get(f"{hub.url}/api/v1/functions/carol/scale/versions/1.1.0")
    assert unpublished.status_code == 404
