"""Test data for the hub: function folders, real packages, real signatures, uploads."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from sqlalchemy import func
from sqlmodel import select

from fnhub.core.packaging import PackResult, pack
from fnhub.core.signing import (
    generate_key,
    make_statement,
    public_key_to_b64,
    sign_statement,
)
from fnhub.hub.context import Hub
from fnhub.hub.models import Function, Namespace, Version
from tests.helpers import blob_digests, leftover_names

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


def make_client(app: FastAPI, *, raise_server_exceptions: bool = True) -> TestClient:
    with warnings.catch_warnings():
        # Starlette nudges towards the `httpx2` fork; its test client works the same on httpx.
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient
    return TestClient(app, raise_server_exceptions=raise_server_exceptions)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def manifest_dict(name: str, version: str, *, namespace: str, description: str = "",
                  categories: list[str] | None = None, labels: dict[str, str] | None = None,
                  kind: str = "job", image_digest: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "kind": kind,
        "entrypoint": "main.py:run",
        "inputs": [{"name": "x", "type": "int", "default": 1}],
        "outputs": [{"name": "y", "type": "int"}],
    }
    if image_digest:
        spec["image"] = {"base": "python:3.11-slim", "digest": image_digest}
    return {
        "apiVersion": "fnhub/v1",
        "kind": "Function",
        "metadata": {
            "name": name, "namespace": namespace, "version": version,
            "description": description or f"{name} does things",
            "categories": categories or [], "labels": labels or {},
        },
        "spec": spec,
    }


def write_function(root: Path, name: str, version: str, *, namespace: str,
                   **manifest: Any) -> Path:
    """A tiny function folder: function.yaml + main.py, in `root/<ns>-<name>-<version>`."""
    folder = root / f"{namespace}-{name}-{version}"
    folder.mkdir(parents=True, exist_ok=True)
    data = manifest_dict(name, version, namespace=namespace, **manifest)
    (folder / "function.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (folder / "main.py").write_text(f"def run(x: int = 1) -> int:\n    return x * 2  # {version}\n")
    return folder


def build(folder: Path) -> tuple[Path, PackResult]:
    out = folder.parent / f"{folder.name}.tar.gz"
    return out, pack(folder, out)


def envelope_for(ref: str, digest: str, key: Ed25519PrivateKey, **kwargs: Any) -> str:
    statement = make_statement(ref, digest, predicate={"metadata": {}, "source": {}}, **kwargs)
    return sign_statement(statement, key).model_dump_json()


@dataclass
class Upload:
    """The three parts of a publish request; tests tamper with them one at a time."""

    namespace: str
    name: str
    manifest: str
    package: bytes
    envelope: str

    def files(self) -> dict[str, Any]:
        return {
            "manifest": (None, self.manifest, "application/yaml"),
            "envelope": (None, self.envelope, "application/json"),
            "package": ("package.tar.gz", self.package, "application/gzip"),
        }

    @property
    def path(self) -> str:
        return f"/api/v1/functions/{self.namespace}/{self.name}/versions"


def make_upload(root: Path, name: str, version: str, *, namespace: str,
                key: Ed25519PrivateKey, **manifest: Any) -> Upload:
    folder = write_function(root, name, version, namespace=namespace, **manifest)
    archive, packed = build(folder)
    envelope = envelope_for(f"{namespace}/{name}@{version}", packed.digest, key)
    return Upload(namespace, name, (folder / "function.yaml").read_text(),
                  archive.read_bytes(), envelope)


@dataclass
class Publisher:
    """A user with a publish token for their namespace and a registered signing key."""

    user: str
    namespace: str
    token: str
    key: Ed25519PrivateKey
    client: httpx.Client  # a TestClient, or a client of a live server
    root: Path

    def upload(self, name: str, version: str, **manifest: Any) -> Upload:
        return make_upload(self.root, name, version, namespace=self.namespace, key=self.key,
                           **manifest)

    def send(self, upload: Upload) -> httpx.Response:
        return self.client.post(upload.path, files=upload.files(), headers=auth(self.token))

    def publish(self, name: str, version: str, **manifest: Any) -> dict[str, Any]:
        response = self.send(self.upload(name, version, **manifest))
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


def make_publisher(client: httpx.Client, admin_token: str, user: str, root: Path,
                   namespace: str | None = None) -> Publisher:
    namespace = namespace or user
    response = client.post("/api/v1/tokens", headers=auth(admin_token), json={
        "name": f"{user}-publish", "user": user, "scopes": [f"publish:{namespace}"]})
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    key = generate_key()
    response = client.post("/api/v1/keys", headers=auth(token), json={
        "namespace": namespace, "public_key": public_key_to_b64(key.public_key())})
    assert response.status_code == 201, response.text
    return Publisher(user, namespace, token, key, client, root / user)


def counts(hub: Hub) -> dict[str, int]:
    """Rows that a publish would add, and blob files (stored and staged)."""
    with hub.db.read() as session:
        return {
            "versions": session.exec(select(func.count()).select_from(Version)).one(),
            "functions": session.exec(select(func.count()).select_from(Function)).one(),
            "namespaces": session.exec(select(func.count()).select_from(Namespace)).one(),
            "blobs": len(blob_digests(hub.store)),
            "staging": len(leftover_names(hub.store)),
        }


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    code: str = body["error"]["code"]
    return code


def dumps(data: Any) -> str:
    return json.dumps(data)
