"""The kinds of hub items: functions (`function.yaml`) and feature sets (`featureset.yaml`).

Both kinds travel the same paths (pack, sign, publish, index, install, verify); these helpers
let those paths read whichever manifest a folder, package or upload holds, by its `kind`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fnhub.core.errors import ManifestError
from fnhub.core.featureset import FeatureSetManifest, parse_featureset
from fnhub.core.manifest import (
    FEATURESET_FILE,
    MANIFEST_FILE,
    Manifest,
    load_yaml,
    parse_manifest,
)

Item = Manifest | FeatureSetManifest
ItemKind = Literal["function", "feature-set"]
ITEM_FILES = (MANIFEST_FILE, FEATURESET_FILE)
FEATURE_SET: ItemKind = "feature-set"


def item_kind(item: Item) -> ItemKind:
    return FEATURE_SET if isinstance(item, FeatureSetManifest) else "function"


def item_file(item: Item) -> str:
    """The file a package of this item carries its manifest in."""
    return FEATURESET_FILE if isinstance(item, FeatureSetManifest) else MANIFEST_FILE


def parse_item(data: Any, *, source: str) -> Item:
    """A function or a feature set manifest, chosen by its `kind` field."""
    if isinstance(data, dict) and data.get("kind") == "FeatureSet":
        return parse_featureset(data, source=source)
    return parse_manifest(data, source=source)


def parse_item_text(text: str | bytes, *, source: str) -> Item:
    return parse_item(load_yaml(text, source=source), source=source)


def manifest_file(folder: str | Path) -> str:
    """The manifest file a folder holds: exactly one of `function.yaml` and `featureset.yaml`,
    a regular file (not a link)."""
    root = Path(folder)
    present = [n for n in ITEM_FILES if (root / n).is_file() and not (root / n).is_symlink()]
    if len(present) > 1:
        raise ManifestError(f"{root} holds both {MANIFEST_FILE} and {FEATURESET_FILE}; "
                            "a folder is one function or one feature set")
    if not present:
        raise ManifestError(f"no {MANIFEST_FILE} or {FEATURESET_FILE} (a regular file) in {root}")
    return present[0]


def load_item(folder: str | Path) -> Item:
    """The manifest of a function or feature set folder."""
    path = Path(folder) / manifest_file(folder)
    item = parse_item_text(path.read_bytes(), source=str(path))
    if item_file(item) != path.name:
        raise ManifestError(f"{path}: kind {item.kind!r} belongs in {item_file(item)}")
    return item
