"""The entrypoint of a pipeline's feature-set step (`fnhub.pipeline.featuresets`): apply the set
and ingest the source, through `FeatureStore.apply` and `FeatureStore.ingest`.

It runs where the pipeline's engine puts the step (a worker process of this interpreter, a Dask
worker), through `fnhub.runtime` like any function; `featureset` is the exact hub URI the
pipeline pinned (verified again here, as every install is) or the set's folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from fnhub.core.errors import InvalidInput
from fnhub.core.packaging import DIGEST_PREFIX
from fnhub.features.offline import AppliedSet, OfflineStore
from fnhub.features.store import FeatureStore


def snapshot(offline: OfflineStore, applied: AppliedSet) -> str:
    """`sha256:...` of the set's applied version and the ingests committed to its dataset:
    it changes with every ingest, so a later step taking it is cached on the data."""
    commits = sorted((c.ingest, c.rows) for c in offline.commits(applied))
    text = json.dumps([offline.url, applied.name, applied.version, applied.digest, commits])
    return DIGEST_PREFIX + hashlib.sha256(text.encode()).hexdigest()


def ingest_step(source: Path, offline: str | None = None, featureset: str = "",
                insecure_skip_verify: bool = False, transform: str | None = None
                ) -> dict[str, Any]:
    """Apply `featureset` to the offline store (default: the configured one), with its
    transform at the pinned `transform` when the pipeline pinned one, ingest `source` into it;
    the step's outputs.

    A relative `offline` here came from a parameter or another step's output (a constant was
    made absolute from the pipeline file's folder): the step runs in its own outputs folder,
    so it would fill a store inside the run, silently; it is refused instead."""
    if offline and "://" not in offline and not Path(offline).is_absolute():
        raise InvalidInput(f"offline {offline!r} is a relative path, which a step would take "
                           "from its own run folder",
                           hint="give an absolute path or s3://, or write it as a constant in "
                                "the pipeline file (taken from the file's folder)")
    with FeatureStore(offline=offline, insecure_skip_verify=insecure_skip_verify) as store:
        applied = store.apply(featureset, transform=transform)
        rows = store.ingest(applied.name, source)
        location = store.offline.location
        where = location.url if location.url.startswith("s3://") else location.root
        return {"feature_set": applied.name, "version": applied.version, "rows": rows,
                "offline": where, "snapshot": snapshot(store.offline, applied)}
