"""Feature-set steps (design §10, Pipelines): a step that `uses:` a feature set ingests into the
feature store, so features are built by the same pipelines that train models.

    - name: features
      uses: hub://library/customer-features:^1      # or a local folder holding featureset.yaml
      with: {source: "${{ steps.data.outputs.dataset }}", offline: ./offline}   # offline optional

The set is resolved, installed and verified like a function, and pinned by version and digest
in `pipeline.lock`, with its hub transform's exact version (`transform`), so a run under the
lock applies the set to a fresh store with the transform it was locked with. So that every
engine, the lock, the run record and the wiring checks treat it like any other step, the graph
holds it as a function whose manifest is the step's interface
(`step_manifest`): its inputs `source` (a dataset: a path or another step's output) and
`offline` (the offline store; default FNHUB_FEATURES_OFFLINE, config.toml, FNHUB_HOME), and its
outputs, which later steps may read:

    feature_set  the set's name (for `SET:FEATURE` references)
    version      the applied version
    rows         the rows this ingest wrote
    offline      the offline store written to (wire it into get-historical-features: that
                 step then runs after this one)
    snapshot     the set's dataset after this ingest (its version and commits), so a step
                 reading the store that takes it is cached on what the store holds

Its entrypoint is `fnhub.features.step:ingest_step`, which applies the set from its pinned URI
(or folder) through `FeatureStore.apply` and ingests through `FeatureStore.ingest`: the store's
own code paths, verified again where it runs. It runs in the current environment (a transform
does too, design §10) and is never served from the step cache: it writes to a store.
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from fnhub.core.errors import InvalidInput
from fnhub.core.featureset import FeatureSetManifest
from fnhub.core.items import FEATURE_SET
from fnhub.core.manifest import Manifest, Metadata, Port, Spec
from fnhub.core.names import closest

ENTRYPOINT = "fnhub.features.step:ingest_step"
STEP_INPUTS = ("source", "offline")  # what `with:` may set
# filled in from the resolved step, never from `with:`
HIDDEN_INPUTS = ("featureset", "insecure_skip_verify", "transform")
FEATURES_EXTRA = ("pyarrow", "duckdb", "pandas")  # what the store's code imports


def step_manifest(item: FeatureSetManifest, featureset: str, *,
                  insecure_skip_verify: bool = False, transform: str | None = None) -> Manifest:
    """The interface of a step ingesting into `item`: `featureset` is what it applies (the
    pinned hub URI, or the folder), `transform` the pinned URI of its hub transform (from
    `pipeline.lock`), so a fresh store applies the set with the transform it was locked with."""
    meta = item.metadata
    return Manifest(
        metadata=Metadata(name=meta.name, namespace=meta.namespace, version=meta.version,
                          description=f"ingest into the feature set {meta.name}"),
        spec=Spec(
            entrypoint=ENTRYPOINT,
            inputs=[
                Port(name="source", type="dataset",
                     description="the table to ingest (Parquet or CSV), through the set's "
                                 "transform when it has one"),
                Port(name="offline", type="str", default=None,
                     description="the offline store (a folder or s3://bucket/prefix); "
                                 "default: the configured one"),
                Port(name="featureset", type="str", default=featureset),
                Port(name="insecure_skip_verify", type="bool", default=insecure_skip_verify),
                Port(name="transform", type="str", default=transform),
            ],
            outputs=[
                Port(name="feature_set", type="str", description="the set's name"),
                Port(name="version", type="str", description="the applied version"),
                Port(name="rows", type="int", description="rows written by this ingest"),
                Port(name="offline", type="str", description="the offline store written to"),
                Port(name="snapshot", type="str",
                     description="the set's dataset after this ingest"),
            ]))


def check_step_input(step: str, ref: str, input_name: str) -> None:
    """`with:` of a feature-set step takes `source` and `offline` only."""
    if input_name not in STEP_INPUTS:
        guess = closest(input_name, STEP_INPUTS)
        raise InvalidInput(f"step {step!r}: feature set {ref} has no input {input_name!r}"
                           + (f" (did you mean {guess!r}?)" if guess else "")
                           + f"; its step takes with: {', '.join(STEP_INPUTS)}")


def anchor_offline(input_name: str, value: Any, base_dir: Path | None) -> Any:
    """A relative folder given as `offline` is taken from the pipeline file's folder (like a
    relative path for an artifact), not from wherever the step happens to run."""
    if input_name != "offline" or not isinstance(value, str) or not value or "://" in value:
        return value
    return os.path.abspath((base_dir or Path.cwd()) / Path(value).expanduser())


def check_features_extra(step: str) -> None:
    """Before anything runs: the step's code (the feature store) is importable here."""
    missing = [module for module in FEATURES_EXTRA if find_spec(module) is None]
    if missing:
        raise InvalidInput(f"step {step!r} ingests into a feature set, which needs the "
                           f"fnhub[features] extra ({', '.join(missing)} is not installed)",
                           hint='pip install "fnhub[features]"')


def is_feature_step(kind: str) -> bool:
    return kind == FEATURE_SET


def feature_source(folder: Path, pinned: str | None) -> str:
    """What the step applies: the exact hub URI, or the local folder."""
    return pinned or str(folder)
