"""Feature sets on the hub: published, versioned and searched through the function API."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fnhub.hub.context import Hub
from tests.features.factories import write_featureset
from tests.hub.factories import Publisher, Upload, build, counts, envelope_for, error_code

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


def featureset_upload(publisher: Publisher, name: str, version: str = "1.0.0",
                      **kwargs: Any) -> Upload:
    folder = write_featureset(publisher.root, name, version, namespace=publisher.namespace,
                              **kwargs)
    archive, packed = build(folder)
    envelope = envelope_for(f"{publisher.namespace}/{name}@{version}", packed.digest,
                            publisher.key)
    return Upload(publisher.namespace, name, (folder / "featureset.yaml").read_text(),
                  archive.read_bytes(), envelope)


def test_a_feature_set_is_published_and_found_by_kind(client: TestClient,
                                                      alice: Publisher) -> None:
    alice.publish("describe", "1.0.0")
    alice.publish("serve-model", "1.0.0", kind="serving")
    response = alice.send(featureset_upload(alice, "driver-stats"))
    assert response.status_code == 201, response.text
    assert response.json()["manifest"]["kind"] == "FeatureSet"
    card = client.get("/api/v1/functions/alice/driver-stats").json()
    assert card["kind"] == "feature-set" and card["latest_version"] == "1.0.0"

    def names(**params: Any) -> list[str]:
        items = client.get("/api/v1/functions", params={"sort": "name", **params}).json()
        return [f"{i['name']}:{i['kind']}" for i in items["items"]]

    assert names() == ["describe:job", "driver-stats:feature-set", "serve-model:serving"]
    assert names(kind="feature-set") == ["driver-stats:feature-set"]
    assert names(kind="function") == ["describe:job", "serve-model:serving"]
    assert names(q="conv_rate") == ["driver-stats:feature-set"]  # features are indexed
    package = client.get("/api/v1/functions/alice/driver-stats/versions/1.0.0/package")
    assert package.status_code == 200


def test_a_name_keeps_its_kind(client: TestClient, hub: Hub, alice: Publisher) -> None:
    alice.publish("describe", "1.0.0")
    response = alice.send(featureset_upload(alice, "describe", "2.0.0"))
    assert response.status_code == 409, response.text
    assert "is a function" in response.json()["error"]["message"]
    assert alice.send(featureset_upload(alice, "stats")).status_code == 201
    before = counts(hub)
    response = alice.send(alice.upload("stats", "2.0.0"))
    assert response.status_code == 409 and "is a feature set" in response.text
    assert counts(hub) == before


def _repack(upload: Upload, extra: dict[str, bytes]) -> bytes:
    """The upload's archive with more top-level files (a tampered package)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(upload.package), mode="r:gz") as src, \
            tarfile.open(fileobj=out, mode="w:gz") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member))
        for name, data in extra.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_packages_holding_the_wrong_manifest_are_refused(client: TestClient, hub: Hub,
                                                        alice: Publisher, tmp_path: Path) -> None:
    before = counts(hub)
    fs = featureset_upload(alice, "driver-stats")
    fn = alice.upload("driver-stats", "1.0.0")
    both = _repack(fs, {"function.yaml": fn.manifest.encode()})
    response = alice.send(Upload(fs.namespace, fs.name, fs.manifest, both, fs.envelope))
    assert response.status_code == 422 and "both" in response.text, response.text
    # a feature set manifest uploaded with a function's package
    response = alice.send(Upload(fs.namespace, fs.name, fs.manifest, fn.package, fn.envelope))
    assert response.status_code == 422 and "no featureset.yaml" in response.text
    # an invalid featureset.yaml names the field
    bad = yaml.safe_load(fs.manifest)
    bad["spec"]["ttl"] = "forever"
    response = alice.send(Upload(fs.namespace, fs.name, yaml.safe_dump(bad), fs.package,
                                 fs.envelope))
    assert response.status_code == 422 and error_code(response) == "invalid_manifest"
    assert "spec.ttl" in response.json()["error"]["message"]
    assert counts(hub) == before


def test_the_catalog_shows_a_feature_set_card(client: TestClient, alice: Publisher) -> None:
    upload = featureset_upload(alice, "driver-stats", transform={
        "uses": "hub://alice/driver-aggregates:^1", "with": {"window": "1h"}})
    assert alice.send(upload).status_code == 201
    page = client.get("/alice/driver-stats")
    assert page.status_code == 200, page.text
    html = page.text
    for text in ("feature set", "featureset-schema", "<code>driver_id</code>", "entity",
                 "<code>conv_rate</code>", "float", "event time", "2d",
                 "hub://alice/driver-aggregates:^1", "window: 1h",
                 "hub features apply hub://alice/driver-stats:^1.0",
                 "&#34;driver-stats:conv_rate&#34;"):
        assert text in html, text
    assert "Entrypoint" not in html and "Inputs and outputs" not in html
