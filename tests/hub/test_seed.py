"""Seeding the catalog: signed by the hub's own library key, idempotent, strict on changes."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from fnhub.core.errors import Conflict, InvalidInput
from fnhub.core.signing import key_id, load_private_key
from fnhub.hub.context import Hub
from fnhub.hub.services import seed
from tests.helpers import ROOT
from tests.hub.factories import write_function

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    root = tmp_path / "catalog"
    for name in ("alpha", "beta"):
        folder = write_function(root, name, "1.0.0", namespace="library",
                                description=f"the {name} function")
        folder.rename(root / name)
    (root / "not-a-function").mkdir()
    return root


def test_seed_publishes_signed_by_the_library_key(hub: Hub, client: TestClient,
                                                  catalog: Path) -> None:
    results = seed.seed_catalog(hub, catalog)
    assert [(r.ref, r.status) for r in results] == [
        ("library/alpha@1.0.0", "published"), ("library/beta@1.0.0", "published")]
    key_path = hub.settings.data_dir / "keys" / "library.key"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    keyid = key_id(load_private_key(key_path).public_key())
    keys = client.get("/api/v1/keys", params={"namespace": "library"}).json()
    assert [k["keyid"] for k in keys] == [keyid]
    detail = client.get("/api/v1/functions/library/alpha/versions/1.0.0").json()
    assert detail["signatures"] == [{"keyid": keyid}]
    assert detail["package"]["digest"] == results[0].digest
    assert client.get("/api/v1/namespaces/library").json()["owners"] == ["admin"]


def test_seed_is_idempotent_and_strict(hub: Hub, catalog: Path) -> None:
    seed.seed_catalog(hub, catalog)
    again = seed.seed_catalog(hub, catalog)
    assert [r.status for r in again] == ["unchanged", "unchanged"]

    (catalog / "alpha" / "main.py").write_text("def run(x: int = 1) -> int:\n    return 0\n")
    with pytest.raises(Conflict, match=r"library/alpha@1\.0\.0") as info:
        seed.seed_catalog(hub, catalog)
    assert info.value.hint and "bump" in info.value.hint

    manifest = catalog / "alpha" / "function.yaml"
    manifest.write_text(manifest.read_text().replace("version: 1.0.0", "version: 1.0.1"))
    results = {r.ref: r.status for r in seed.seed_catalog(hub, catalog)}
    assert results == {"library/alpha@1.0.1": "published", "library/beta@1.0.0": "unchanged"}


def test_seed_refuses_other_namespaces(hub: Hub, tmp_path: Path) -> None:
    write_function(tmp_path / "catalog", "gamma", "1.0.0", namespace="someone")
    with pytest.raises(InvalidInput, match="namespace 'library'"):
        seed.seed_catalog(hub, tmp_path / "catalog")
    with pytest.raises(InvalidInput, match="does not exist"):
        seed.seed_catalog(hub, tmp_path / "missing")


def test_the_real_catalog_seeds(hub: Hub, client: TestClient) -> None:
    folders = seed.catalog_folders(ROOT / "catalog")
    assert folders, "the repository's catalog has functions"
    results = seed.seed_catalog(hub, ROOT / "catalog")
    assert {r.status for r in results} == {"published"}
    listed = client.get("/api/v1/functions", params={"namespace": "library", "limit": 100})
    assert listed.json()["total"] == len(folders)
