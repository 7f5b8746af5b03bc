"""Every catalog folder keeps the catalog's contract: a valid manifest in `library`, a card,
an entrypoint whose signature is exactly the declared inputs, and examples that name inputs."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from fnhub.core.featureset import load_featureset
from fnhub.core.manifest import FEATURESET_FILE, HubItem, load_manifest
from fnhub.core.uri import parse_uri
from fnhub.runtime import load_callable

CATALOG = Path(__file__).resolve().parents[2] / "catalog"
FOLDERS = sorted(p for p in CATALOG.iterdir() if (p / "function.yaml").is_file())
FNHUB_READERS = {"get-historical-features"}  # reads the feature store through fnhub's own code


def test_the_catalog_has_the_twelve_functions() -> None:
    assert {p.name for p in FOLDERS} >= {
        "load-dataset", "gen-class-data", "describe", "clean-data", "split-dataset",
        "feature-selection", "train", "evaluate", "batch-predict", "drift-detect", "tune",
        "model-server"}


def _check_card(folder: Path, manifest: HubItem, *snippets: str) -> None:
    """Named after its folder, in `library`, described, and a card showing `snippets`."""
    meta = manifest.metadata
    assert meta.name == folder.name and meta.namespace == "library"
    assert meta.description and meta.categories and meta.license
    card = (folder / "README.md").read_text()
    assert all(snippet in card for snippet in snippets)


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_manifest_card_and_signature(folder: Path) -> None:
    manifest = load_manifest(folder)
    spec = manifest.spec
    _check_card(folder, manifest, f"hub://{manifest.metadata.name}", "import_function")

    signature = inspect.signature(load_callable(folder, spec.entrypoint))
    params = {name: p for name, p in signature.parameters.items()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    assert list(params) == [p.name for p in spec.inputs]
    for port in spec.inputs:
        default = params[port.name].default
        if port.required:
            assert default is inspect.Parameter.empty, port.name
        else:
            assert default == port.default, port.name

    assert spec.examples, "every card needs an example"
    for example in spec.examples:
        assert set(example.inputs) <= set(params)
    if spec.kind == "serving":
        assert spec.outputs == []
    else:
        assert spec.outputs


def _requires_fnhub(folder: Path) -> bool:
    return any(re.split(r"[<>=!~; \[]", r, maxsplit=1)[0].lower() == "fnhub"
               for r in load_manifest(folder).spec.requirements)


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_function_code_does_not_import_fnhub(folder: Path) -> None:
    """It runs in a venv holding only its requirements, where fnhub is not installed; only a
    function that reads the feature store through fnhub lists fnhub among them."""
    if _requires_fnhub(folder):
        assert folder.name in FNHUB_READERS, f"{folder.name} should not need fnhub"
        return
    for source in folder.glob("*.py"):
        text = source.read_text()
        assert "import fnhub" not in text and "from fnhub" not in text, source


def test_only_the_feature_store_reader_requires_fnhub() -> None:
    assert {p.name for p in FOLDERS if _requires_fnhub(p)} == FNHUB_READERS


SETS = sorted(p for p in CATALOG.iterdir() if (p / FEATURESET_FILE).is_file())


def test_the_catalog_has_the_customer_features_example() -> None:
    assert {p.name for p in SETS} >= {"customer-features"}


@pytest.mark.parametrize("folder", SETS, ids=lambda p: p.name)
def test_feature_set_card_and_transform(folder: Path) -> None:
    """A catalog feature set lives in `library`, has a card, and its transform is a catalog
    function with one dataset output, taking the inputs the set gives it."""
    manifest = load_featureset(folder)
    spec = manifest.spec
    _check_card(folder, manifest, f"hub://library/{manifest.metadata.name}", "FeatureStore")
    if spec.transform is not None:
        uri = parse_uri(spec.transform.uses)
        assert uri.namespace == "library" and (CATALOG / uri.name / "function.yaml").is_file()
        function = load_manifest(CATALOG / uri.name).spec
        assert set(spec.transform.with_) <= {p.name for p in function.inputs}
        assert [p.type for p in function.outputs].count("dataset") == 1
