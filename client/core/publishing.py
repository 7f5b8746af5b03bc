"""Pack and sign a function folder, and plan a catalog publish: the part of publishing the
hub's catalog seeding shares with `hub publish` and `hub catalog publish`."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fnhub.core.api_models import ImageInfo
from fnhub.core.errors import Conflict, InvalidInput
from fnhub.core.items import ITEM_FILES, Item, item_file, load_item
from fnhub.core.manifest import MANIFEST_FILE, Manifest, load_manifest
from fnhub.core.packaging import pack, unpack
from fnhub.core.signing import Envelope, make_statement, sign_statement


def git_provenance(folder: Path) -> dict[str, str]:
    """Repository and commit of the folder when it is inside a git work tree."""
    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                                  text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None

    out = {}
    if commit := git("rev-parse", "HEAD"):
        out["commit"] = commit
        if remote := git("config", "--get", "remote.origin.url"):
            out["repository"] = remote
    return out


@dataclass(frozen=True)
class Prepared:
    """A folder packed and signed, ready to upload."""

    manifest: Item
    manifest_text: str
    archive: Path
    digest: str
    envelope: Envelope


def _with_image(folder: Path, manifest: Manifest, image: ImageInfo, workdir: Path) -> Path:
    """A copy of the folder's package whose function.yaml records the pushed image."""
    copy, archive = workdir / "with-image", workdir / "without-image.tar.gz"
    pack(folder, archive)
    unpack(archive, copy)
    spec = manifest.spec.model_copy(update={"image": manifest.spec.image.model_copy(
        update={"ref": image.ref, "digest": image.digest})})
    (copy / MANIFEST_FILE).write_text(manifest.model_copy(update={"spec": spec}).to_yaml(),
                                      encoding="utf-8")
    return copy


def prepare(folder: Path, key: Ed25519PrivateKey, workdir: Path,
            image: ImageInfo | None = None) -> Prepared:
    """Pack and sign `folder`; with `image`, its package records it and the statement signs
    its digest."""
    manifest: Item = load_item(folder)
    meta = manifest.metadata
    source: dict[str, Any] = meta.source.model_dump(exclude_none=True) if meta.source else {}
    predicate = {"metadata": meta.model_dump(mode="json", exclude_none=True),
                 "source": {**git_provenance(folder), **source}}
    if image is not None:
        if not isinstance(manifest, Manifest):
            raise InvalidInput(f"{manifest.ref} is a feature set; it has no image to publish")
        folder = _with_image(folder, manifest, image, workdir)
        manifest = load_manifest(folder)
    archive = workdir / f"{meta.namespace}-{meta.name}-{meta.version}.tar.gz"
    packed = pack(folder, archive)
    statement = make_statement(manifest.ref, packed.digest, predicate=predicate,
                               image_digest=image.digest if image else None)
    return Prepared(manifest, (folder / item_file(manifest)).read_text(encoding="utf-8"), archive,
                    packed.digest, sign_statement(statement, key))


# -- catalogs -------------------------------------------------------------------------------

@dataclass(frozen=True)
class CatalogResult:
    ref: str  # NS/NAME@VERSION
    digest: str
    status: Literal["published", "unchanged"]


def catalog_folders(catalog_dir: Path) -> list[Path]:
    """The function and feature set folders (holding a function.yaml or featureset.yaml)
    directly under `catalog_dir`, sorted."""
    if not catalog_dir.is_dir():
        raise InvalidInput(f"catalog folder {catalog_dir} does not exist")
    return sorted(p for p in catalog_dir.iterdir() if any((p / f).is_file() for f in ITEM_FILES))


def publish_catalog(folders: list[Path], key: Ed25519PrivateKey, workdir: Path, *,
                    published_digest: Callable[[Item], str | None],
                    send: Callable[[Prepared], object]) -> list[CatalogResult]:
    """Publish each folder unless that exact package is there already; a version published
    with other content is a conflict (bump the version), reported before anything is sent."""
    prepared = [prepare(folder, key, workdir) for folder in folders]
    plan = []
    for item in prepared:
        existing = published_digest(item.manifest)
        if existing is not None and existing != item.digest:
            raise Conflict(
                f"{item.manifest.ref} is already published with digest {existing}, but its "
                f"folder now packs to {item.digest}",
                hint="bump metadata.version in its function.yaml")
        plan.append((item, existing is None))
    results = []
    for item, needed in plan:
        if needed:
            send(item)
        results.append(CatalogResult(item.manifest.ref, item.digest,
                                     "published" if needed else "unchanged"))
    return results
