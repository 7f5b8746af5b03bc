"""function.yaml validation: every problem names its field."""

from __future__ import annotations

from pathlib import Path

import pytest

from fnhub.core.errors import ManifestError
from fnhub.core.manifest import load_manifest, parse_manifest, parse_manifest_text

GOOD = """\
apiVersion: fnhub/v1
kind: Function
metadata: {name: describe, version: 1.2.0, description: Summary statistics}
spec:
  entrypoint: describe.py:analyze
  requirements: ["pandas>=2.0"]
  inputs:
    - {name: table, type: dataset}
    - {name: label_column, type: str, default: null}
  outputs:
    - {name: summary, type: dataset}
"""


def test_good_manifest_and_defaults() -> None:
    manifest = parse_manifest_text(GOOD)
    assert manifest.metadata.namespace == "library"
    assert manifest.ref == "library/describe@1.2.0"
    table, label = manifest.spec.inputs
    assert table.required and table.is_artifact
    assert not label.required and label.default is None


def test_round_trip_keeps_required_ports_required() -> None:
    manifest = parse_manifest_text(GOOD)
    data = manifest.to_dict()
    assert "default" not in data["spec"]["inputs"][0]
    assert data["spec"]["inputs"][1]["default"] is None
    assert parse_manifest(data) == manifest
    assert parse_manifest_text(manifest.to_yaml()) == manifest


@pytest.mark.parametrize(("change", "message"), [
    (("type: str,", "type: strng,"), "spec.inputs[1].type: unknown type 'strng'"),
    (("name: describe", "name: Describe"), "metadata.name: invalid name 'Describe'"),
    (("version: 1.2.0", "version: '1.2'"), "metadata.version: '1.2' is not a SemVer"),
    (("kind: Function", "kind: Pipeline"), "kind:"),
    (("apiVersion: fnhub/v1", "apiVersion: fnhub/v2"), "apiVersion"),
    (("entrypoint: describe.py:analyze", "entrypoint: describe.py"), "spec.entrypoint"),
    (("entrypoint: describe.py:analyze", "entrypoint: ../x.py:f"), "inside the function folder"),
    (('"pandas>=2.0"', '"pandas>>2"'), "spec.requirements: Value error, requirement [0]"),
    (("{name: summary, type: dataset}", "{name: 2x, type: dataset}"),
     "spec.outputs[0].name: '2x' is not a valid Python identifier"),
    (("{name: label_column, type: str, default: null}", "{name: table, type: str}"),
     "spec.inputs: duplicate name 'table'"),
    (("description: Summary statistics", "descripton: x"), "metadata.descripton: unknown field"),
    (("  entrypoint: describe.py:analyze\n", ""), "spec.entrypoint: required field is missing"),
])
def test_each_problem_names_its_field(change: tuple[str, str], message: str) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD
    with pytest.raises(ManifestError) as info:
        parse_manifest_text(text)
    assert message.replace("Value error, ", "") in info.value.message


@pytest.mark.parametrize(("text", "message"), [
    ("metadata: [unclosed", "malformed YAML at line 1"),
    ("- a list", "expected a mapping"),
    ("", "expected a mapping"),
])
def test_malformed_documents(text: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_manifest_text(text)


def test_folder_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"no function\.yaml"):
        load_manifest(tmp_path)
