"""`featureset.yaml`: valid sets load; each problem names its field; kinds are told apart."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from fnhub.core.errors import ManifestError
from fnhub.core.featureset import FeatureSetManifest, load_featureset, parse_featureset
from fnhub.core.items import load_item, manifest_file, parse_item_text
from fnhub.core.manifest import load_manifest
from fnhub.core.packaging import pack, unpack
from tests.features.factories import featureset_dict, write_featureset


def test_a_valid_set_loads_with_its_schema(tmp_path: Path) -> None:
    fs = load_featureset(write_featureset(tmp_path, transform={
        "uses": "hub://acme/driver-aggregates:^1", "with": {"window": "1h"}}))
    assert fs.ref == "acme/driver-stats@1.0.0"
    assert fs.spec.ttl_delta == timedelta(days=2)
    assert fs.spec.columns() == {"driver_id": "int", "event_timestamp": "timestamp",
                                 "created": "timestamp", "conv_rate": "float",
                                 "acc_rate": "float", "avg_daily_trips": "int"}
    assert fs.spec.transform is not None and fs.spec.transform.with_ == {"window": "1h"}
    assert parse_featureset(fs.to_dict()) == fs  # round trip, `with` kept by alias


def _set(path: str, value: Any) -> dict[str, Any]:
    data = featureset_dict()
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(("path", "value", "message"), [
    ("spec.features.0", {"name": "conv_rate", "type": "double"}, "spec.features[0].type"),
    ("spec.features.1", {"name": "Acc-Rate", "type": "float"}, "spec.features[1].name"),
    ("spec.entities.0", {"name": "1driver", "type": "int"}, "spec.entities[0].name"),
    ("spec.ttl", "2 days", "spec.ttl: ttl '2 days' must be a number and a unit"),
    ("spec.ttl", "3y", "spec.ttl"),
    ("spec.timestamp", "Event Time", "spec.timestamp"),
    ("spec.created", "conv_rate", "column 'conv_rate' is named twice"),
    ("spec.features", [], "spec.features"),
    ("spec.entities", [], "spec.entities"),
    ("spec.transform", {"uses": "hub://Bad Name"}, "spec.transform.uses"),
    ("spec.transform", {"uses": "x", "width": {}}, "spec.transform.width: unknown field"),
    ("spec.colour", "red", "spec.colour: unknown field"),
    ("metadata.version", "one", "metadata.version"),
])
def test_each_problem_names_its_field(path: str, value: Any, message: str) -> None:
    with pytest.raises(ManifestError) as err:
        parse_featureset(_set(path, value))
    assert message in err.value.message


def test_kind_picks_the_model_and_the_file(tmp_path: Path) -> None:
    text = yaml.safe_dump(featureset_dict())
    assert isinstance(parse_item_text(text, source="x"), FeatureSetManifest)
    folder = write_featureset(tmp_path)
    assert manifest_file(folder) == "featureset.yaml"
    assert isinstance(load_item(folder), FeatureSetManifest)
    (folder / "function.yaml").write_text("kind: Function\n")
    with pytest.raises(ManifestError, match=r"both function\.yaml and featureset\.yaml"):
        load_item(folder)
    with pytest.raises(ManifestError, match="both"):
        pack(folder, tmp_path / "x.tar.gz")
    (folder / "function.yaml").unlink()
    (folder / "featureset.yaml").write_text(text.replace("FeatureSet", "Function"))
    with pytest.raises(ManifestError):
        load_item(folder)


def test_a_feature_set_packs_deterministically_and_is_not_a_function(tmp_path: Path) -> None:
    folder = write_featureset(tmp_path)
    first, second = pack(folder, tmp_path / "a.tar.gz"), pack(folder, tmp_path / "b.tar.gz")
    assert first.digest == second.digest
    unpack(tmp_path / "a.tar.gz", tmp_path / "out")
    assert load_item(tmp_path / "out") == load_item(folder)
    with pytest.raises(ManifestError, match="holds a feature set") as err:
        load_manifest(folder)  # what `hub run` and import_function load
    assert err.value.hint and "hub features apply" in err.value.hint


DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("uses", "pin", "problem"), [
    ("hub://acme/agg:^1", f"hub://hub.example.com/acme/agg:1.4.0@{DIGEST}", None),
    ("hub://acme/agg", f"hub://acme/agg:3.0.0@{DIGEST}", None),  # latest: any release
    ("hub://acme/agg:stable", f"hub://acme/agg:1.0.0@{DIGEST}", None),  # only the hub knows
    ("hub://hub.example.com/acme/agg:^1", f"hub://hub.example.com/acme/agg:1.0.0@{DIGEST}",
     None),
    ("hub://acme/agg:^1", f"hub://acme/agg:2.0.0@{DIGEST}", "is outside"),
    ("hub://acme/agg:^1", f"hub://acme/other:1.0.0@{DIGEST}", "not an exact"),
    ("hub://acme/agg:^1", f"hub://evil/agg:1.0.0@{DIGEST}", "not an exact"),
    ("hub://hub.example.com/acme/agg:^1", f"hub://evil.example.com/acme/agg:1.0.0@{DIGEST}",
     "not an exact"),
    ("hub://acme/agg:^1", "hub://acme/agg:1.0.0", "not an exact"),  # no digest
    ("hub://acme/agg:^1", f"hub://acme/agg:^1@{DIGEST}", "not an exact"),  # a range
    ("./agg", f"hub://acme/agg:1.0.0@{DIGEST}", "has no hub transform"),
    (None, f"hub://acme/agg:1.0.0@{DIGEST}", "has no hub transform"),
])
def test_a_transform_pin_must_be_an_exact_version_of_the_sets_transform(
        uses: str | None, pin: str, problem: str | None) -> None:
    """A pipeline lock's transform pin is a file anyone may edit: it binds only to an exact,
    digest-pinned version of the set's own transform, within its range and on its hub."""
    data = featureset_dict(transform={"uses": uses} if uses else None)
    fs = parse_featureset(data)
    if problem is None:
        fs.check_transform_pin(pin)
    else:
        with pytest.raises(ManifestError, match=problem):
            fs.check_transform_pin(pin)
