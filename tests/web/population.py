"""A large hub in seconds: functions, versions and keys inserted straight through the models.

Publishing 10,000 functions over HTTP would take minutes; this writes the same rows the
publish service writes (a function card, its category rows, its search entry, versions
with real signed envelopes, a registered key) in a few bulk statements. Every version
shares one real package blob with a README, so pages read and render it like any other.
Used by the web tests and by `bench/web_pages.py`.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, insert
from sqlmodel import select

from fnhub.core.packaging import pack
from fnhub.core.signing import (
    generate_key,
    key_id,
    make_statement,
    public_key_to_b64,
    sign_statement,
)
from fnhub.hub.context import Hub
from fnhub.hub.models import (
    Function,
    FunctionCategory,
    Namespace,
    PublisherKey,
    Version,
    utcnow,
)
from fnhub.hub.services.search import index_functions

CATEGORIES = ("data-preparation", "data-analysis", "model-training", "model-evaluation",
              "model-serving", "monitoring", "feature-engineering", "data-generation")
WORDS = ("table", "dataset", "model", "drift", "score", "clean", "split", "plot", "forecast",
         "embed", "tokenize", "image", "audio", "cluster", "rank", "sample")
README = """# A generated function

Made by `tests/web/population.py` to fill a large hub.

| input | type |
|---|---|
| `table` | dataset |

```python
import fnhub
```
"""


@dataclass(frozen=True)
class Package:
    digest: str
    size: int


def store_package(hub: Hub, root: Path) -> Package:
    """Pack one small real function (with a README) into the hub's blob store."""
    folder = root / "generated"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "function.yaml").write_text(yaml.safe_dump(manifest("library", "generated",
                                                                  "1.0.0", 0)))
    (folder / "main.py").write_text("def run(table):\n    return 1\n")
    (folder / "README.md").write_text(README)
    archive = root / "generated.tar.gz"
    packed = pack(folder, archive)
    with archive.open("rb") as fh:
        staged = hub.store.stage(iter(lambda: fh.read(1 << 16), b""))
    hub.store.commit(staged)
    return Package(packed.digest, packed.size)


def manifest(namespace: str, name: str, version: str, i: int) -> dict[str, Any]:
    return {
        "apiVersion": "fnhub/v1",
        "kind": "Function",
        "metadata": {
            "name": name, "namespace": namespace, "version": version,
            "description": f"{WORDS[i % len(WORDS)]} the {WORDS[(i // 3) % len(WORDS)]} "
                           f"of a {WORDS[(i // 7) % len(WORDS)]} (generated {i})",
            "categories": [CATEGORIES[i % len(CATEGORIES)]],
            "labels": {"framework": "stdlib"}, "license": "Apache-2.0", "authors": [],
            "source": None,
        },
        "spec": {
            "kind": "serving" if i % 10 == 0 else "job",
            "entrypoint": "main.py:run", "python": ">=3.10", "requirements": ["pandas>=2.0"],
            "inputs": [{"name": "table", "type": "dataset", "description": "any table"},
                       {"name": "n", "type": "int", "description": "how many", "default": 3}],
            "outputs": [{"name": "result", "type": "int", "description": "the answer"}],
            "image": {"base": "python:3.11-slim", "ref": None, "digest": None},
            "resources": {"cpu": None, "memory": None, "gpu": 0},
            "examples": [],
        },
    }


class Population:
    """Adds namespaces, functions and versions to one hub, all signed by one key."""

    def __init__(self, hub: Hub, root: Path | None = None) -> None:
        self.hub = hub
        self.key: Ed25519PrivateKey = generate_key()
        self.package = store_package(hub, root or Path(tempfile.mkdtemp(prefix="fnhub-pop-")))
        self.count = 0

    def _next_id(self, model: Any) -> int:
        with self.hub.db.read() as session:
            return (session.exec(select(func.max(model.id))).one() or 0) + 1

    def _envelope(self, ref: str) -> dict[str, Any]:
        statement = make_statement(ref, self.package.digest, predicate={"metadata": {}})
        return sign_statement(statement, self.key).model_dump(mode="json")

    def add(self, *, functions: int, versions: int = 1, namespaces: int = 50,
            prefix: str = "gen") -> list[tuple[str, str]]:
        """Add `functions` functions with `versions` versions each, spread over `namespaces`
        new namespaces; returns their (namespace, name) in insertion order."""
        ns_start, fn_start, v_start = (self._next_id(Namespace), self._next_id(Function),
                                       self._next_id(Version))
        public = public_key_to_b64(self.key.public_key())
        now = utcnow()
        ns_rows = [{"id": ns_start + n, "name": f"{prefix}{ns_start + n}", "created_at": now}
                   for n in range(namespaces)]
        fn_rows: list[dict[str, Any]] = []
        version_rows: list[dict[str, Any]] = []
        category_rows: list[dict[str, Any]] = []
        fts_rows: list[tuple[str, list[str]]] = []  # what the search index gets
        refs = []
        for f in range(functions):
            i = self.count + f
            ns = ns_rows[f % namespaces]
            name = f"{WORDS[i % len(WORDS)]}-{i:05d}"
            fn_id = fn_start + f
            numbers = [f"1.{v}.0" for v in range(versions)]
            shown = manifest(ns["name"], name, numbers[-1], i)
            meta = shown["metadata"]
            fn_rows.append({
                "id": fn_id, "namespace_id": ns["id"], "name": name,
                "description": meta["description"], "kind": shown["spec"]["kind"],
                "categories": meta["categories"], "labels": meta["labels"],
                "latest_version": numbers[-1], "live_versions": versions,
                "downloads": (i * 37) % 5000, "created_at": now,
                "updated_at": now - timedelta(minutes=i),
            })
            category_rows += [{"function_id": fn_id, "category": c} for c in meta["categories"]]
            fts_rows.append((ns["name"], [*meta["categories"], shown["spec"]["kind"]]))
            for number in numbers:
                ref = f"{ns['name']}/{name}@{number}"
                version_rows.append({
                    "id": v_start + len(version_rows), "function_id": fn_id, "version": number,
                    "manifest": manifest(ns["name"], name, number, i),
                    "package_digest": self.package.digest, "package_size": self.package.size,
                    "envelope": self._envelope(ref), "keyids": [key_id(self.key.public_key())],
                    "image_ref": None, "image_digest": None, "yanked": False,
                    "yank_reason": None, "published_at": now, "published_by": None,
                    "downloads": 0, "deleted": False, "deleted_at": None,
                })
            refs.append((ns["name"], name))
        self.count += functions
        with self.hub.db.write() as session:
            session.execute(insert(Namespace), ns_rows)
            session.execute(insert(PublisherKey), [
                {"namespace_id": ns["id"], "keyid": key_id(self.key.public_key()),
                 "public_key": public, "name": "population", "created_at": now}
                for ns in ns_rows])
            session.execute(insert(Function), fn_rows)
            session.execute(insert(FunctionCategory), category_rows)
            session.execute(insert(Version), version_rows)
            index_functions(session, [
                (Function(**row), namespace, keywords)
                for row, (namespace, keywords) in zip(fn_rows, fts_rows, strict=True)])
        return refs
