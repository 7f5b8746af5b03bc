"""`hub publish`: pack a function folder, sign the statement, upload it to the hub."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from fnhub.api_client import HubClient
from fnhub.api_models import VersionDetail
from fnhub.config import HubEntry
from fnhub.keyring import LocalKey
from fnhub.manifest import MANIFEST_FILE, load_manifest
from fnhub.packaging import pack
from fnhub.signing import make_statement, sign_statement


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


def publish_folder(folder: Path, hub: HubEntry, key: LocalKey) -> VersionDetail:
    manifest = load_manifest(folder)
    meta = manifest.metadata
    source: dict[str, Any] = meta.source.model_dump(exclude_none=True) if meta.source else {}
    source = {**git_provenance(folder), **source}
    predicate = {"metadata": meta.model_dump(mode="json", exclude_none=True), "source": source}
    with tempfile.TemporaryDirectory(prefix="fnhub-publish-") as tmp:
        package = Path(tmp) / f"{meta.name}-{meta.version}.tar.gz"
        packed = pack(folder, package)
        statement = make_statement(manifest.ref, packed.digest, predicate=predicate)
        envelope = sign_statement(statement, key.load())
        with HubClient(hub.url, hub.token) as client:
            return client.publish(
                meta.namespace, meta.name, (folder / MANIFEST_FILE).read_text(), package,
                json.dumps(envelope.model_dump(mode="json")))
