"""`fnhub.FeatureStore`: apply feature sets from the hub, ingest, build point-in-time training
data, materialize and serve online values (design §10).

A feature set is applied from a hub URI through the same installer as a function (signature,
key trust, digests), or from a local folder (recorded as unverified). Its transform, when it
has one, is pinned then to an exact version and digest, and every ingest runs that pin
through the same runner as `hub run`.
"""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow.parquet as pq

from fnhub.config import Config, load_config
from fnhub.core.errors import Conflict, InvalidInput, ManifestError, NotFound
from fnhub.core.featureset import FeatureSetManifest, FeatureSetSpec, load_featureset
from fnhub.core.manifest import MANIFEST_FILE
from fnhub.core.uri import is_local_ref, local_path, parse_uri
from fnhub.features.engine import check_engine, ingest_dask, point_in_time_dask
from fnhub.features.historical import check_features, parse_refs, point_in_time
from fnhub.features.materialize import entity_key, materialize_set
from fnhub.features.offline import AppliedSet, OfflineStore, Pin, Progress
from fnhub.features.online import Lookup, OnlineStore, normalize, open_online, parse_text
from fnhub.features.sources import batches as _batches

if TYPE_CHECKING:
    import pandas as pd

    from fnhub.function import Function
    from fnhub.install import Installer, Warn

_JSON_TYPES: dict[str, type] = {"float": float, "int": int, "str": str, "bool": bool}

def _utc(value: datetime | str | None, what: str) -> datetime:
    if value is None:
        return datetime.now(timezone.utc)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"{what}: {value!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise InvalidInput(f"{what} must be timezone-aware (e.g. 2026-12-01T00:00:00Z)")
    return value.astimezone(timezone.utc)


def _as_parquet(source: Any, spec: FeatureSetSpec, folder: Path) -> Path:
    """The source as one Parquet file (a transform's dataset input), streamed."""
    if not hasattr(source, "columns") and os.fspath(source).endswith(".parquet") \
            and Path(os.fspath(source)).is_file():
        return Path(os.fspath(source))
    out = folder / "source.parquet"
    writer: pq.ParquetWriter | None = None
    try:
        for batch in _batches(source, spec):
            writer = writer or pq.ParquetWriter(out, batch.schema)
            writer.write_batch(batch)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise InvalidInput("the source table is empty")
    return out


def _transform_ports(function: Function) -> tuple[str, str]:
    """The transform's one dataset input and one dataset output."""
    spec = function.manifest.spec
    inputs = [p.name for p in spec.inputs if p.type == "dataset"]
    outputs = [p.name for p in spec.outputs if p.type == "dataset"]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ManifestError(f"transform {function.manifest.ref} must have exactly one dataset "
                            f"input and one dataset output (has {len(inputs)} and "
                            f"{len(outputs)})")
    return inputs[0], outputs[0]


@dataclass
class OnlineQuery:
    """`get_online_features` between its checks and its one online-store lookup."""

    groups: OrderedDict[str, list[str]]  # features by set, in request order
    sets: dict[str, AppliedSet]
    out: dict[str, list[Any]]  # the entity columns so far
    requests: list[tuple[str, list[str]]]  # (set, its entity keys): the lookup to send


class FeatureStore:
    """An offline store (Parquet, folder or s3://) and an online store (SQLite, Redis,
    PostgreSQL); defaults from FNHUB_FEATURES_OFFLINE/ONLINE, config.toml's [features], else
    under FNHUB_HOME."""

    def __init__(self, offline: str | os.PathLike[str] | None = None,
                 online: str | os.PathLike[str] | None = None, *, config: Config | None = None,
                 insecure_skip_verify: bool = False, warn: Warn | None = None) -> None:
        self.config = config or load_config()
        features = self.config.features
        self.offline = OfflineStore(os.fspath(
            offline or features.offline or self.config.home / "features" / "offline"))
        self._online_url = os.fspath(
            online or features.online or self.config.home / "features" / "online.db")
        self._online: OnlineStore | None = None
        self._installer_options = (insecure_skip_verify, warn)

    @cached_property
    def installer(self) -> Installer:
        """Made on first use: training data and online lookups never install anything, and
        importing the installer costs them ~14 MiB."""
        from fnhub.install import Installer, default_warn

        insecure_skip_verify, warn = self._installer_options
        return Installer(self.config, insecure_skip_verify=insecure_skip_verify,
                         warn=warn or default_warn)

    @property
    def online(self) -> OnlineStore:
        """Opened on first use: ingest and training data never need it."""
        if self._online is None:
            self._online = open_online(self._online_url)
        return self._online

    def warm_up(self) -> None:
        """Connect to the online store and parse every applied set now: a feature server
        worker calls this at start-up, so its first lookup costs what every other does."""
        self.online.connect()
        for applied in self.offline.applied():
            _ = self.offline.get(applied.name).spec

    def close(self) -> None:
        if self._online is not None:
            self._online.close()
            self._online = None

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- apply ----------------------------------------------------------------------------

    def _load(self, ref: str) -> tuple[FeatureSetManifest, Path, str, str, bool]:
        """(manifest, folder, digest, source, verified) of a URI or a local folder."""
        from fnhub.function import verify_installed
        from fnhub.install import files_digest

        if is_local_ref(ref):
            folder = local_path(ref)
            return load_featureset(folder), folder, files_digest(folder), str(folder), False
        uri = parse_uri(ref)
        record = self.installer.ensure(uri)
        folder = self.installer.store.files_dir(record)
        verify_installed(folder, record)
        if (folder / MANIFEST_FILE).is_file():
            raise ManifestError(f"{record.ref}@{record.version} is a function, not a feature set",
                                hint=f"run it with: hub run {uri}")
        manifest = load_featureset(folder)
        meta = manifest.metadata
        if (meta.namespace, meta.name, meta.version) != (record.namespace, record.name,
                                                         record.version):
            raise ManifestError(f"{record.ref}@{record.version}: its featureset.yaml describes "
                                f"{manifest.ref}")
        return manifest, folder, record.digest, record.uri, record.keyid is not None

    def _pin(self, manifest: FeatureSetManifest, folder: Path,
             pinned: str | None = None) -> Pin | None:
        """The transform's exact version: `pinned` (checked against the set's range), or
        what its range resolves to now."""
        if pinned is not None:
            manifest.check_transform_pin(pinned)
        transform = manifest.spec.transform
        if transform is None:
            return None
        from fnhub.function import import_function
        from fnhub.install import files_digest

        if is_local_ref(transform.uses):  # a function folder shipped inside the set's package
            target = (folder / transform.uses.removeprefix("file://")).resolve()
            if not target.is_relative_to(folder.resolve()):
                raise ManifestError(f"{manifest.ref}: transform {transform.uses!r} must be a "
                                    "folder inside the feature set")
            function = import_function(str(target), config=self.config)
            _transform_ports(function)
            return Pin(uri=str(target), digest=files_digest(target))
        function = import_function(pinned or transform.uses, config=self.config,
                                   insecure_skip_verify=self.installer.insecure_skip_verify,
                                   warn=self.installer.warn)
        _transform_ports(function)
        assert function.record is not None
        return Pin(uri=function.record.uri, digest=function.record.digest)

    def apply(self, ref: str | os.PathLike[str], *, insecure_skip_verify: bool = False,
              transform: str | None = None) -> AppliedSet:
        """Register a feature set (hub URI or folder) in this store; a new version starts an
        empty dataset, re-applying the same version and digest changes nothing.

        `transform` pins the set's hub transform to an exact, digest-pinned URI within its
        range (a pipeline lock's pin) instead of resolving the range again."""
        if insecure_skip_verify:
            self.installer.insecure_skip_verify = True
        manifest, folder, digest, source, verified = self._load(os.fspath(ref))
        meta = manifest.metadata
        try:
            current: AppliedSet | None = self.offline.get(meta.name)
        except NotFound:
            current = None
        if current is not None and current.version == meta.version:
            if current.digest != digest:
                raise Conflict(f"{meta.name} {meta.version} is applied here with digest "
                               f"{current.digest}, but {source} has {digest}",
                               hint="bump metadata.version in its featureset.yaml")
            if current.namespace == meta.namespace:
                # the transform stays pinned as first applied: a range resolved again could
                # name a newer function, and one dataset would mix rows of two transforms
                if transform is not None and (current.transform is None
                                              or current.transform.uri != transform):
                    raise Conflict(
                        f"{meta.name} {meta.version} is applied here with transform "
                        f"{current.transform.uri if current.transform else None}, not the "
                        f"pinned {transform}",
                        hint="ingest into another offline store, or lock the pipeline again")
                return current
        if current is not None and current.namespace != meta.namespace:
            raise Conflict(f"the name {meta.name} is taken here by {current.namespace}/"
                           f"{current.name}; names are unique within one store")
        applied = AppliedSet(
            name=meta.name, namespace=meta.namespace, version=meta.version, digest=digest,
            source=source, manifest=manifest.to_dict(),
            transform=self._pin(manifest, folder, transform),
            verified=verified, applied_at=datetime.now(timezone.utc))
        self.offline.save(applied)
        return applied

    def list(self) -> list[AppliedSet]:
        return self.offline.applied()

    # -- offline --------------------------------------------------------------------------

    def _transformed(self, applied: AppliedSet, source: Any, workdir: Path) -> Path:
        """Run the pinned transform on the source; the path of the feature table it wrote."""
        from fnhub.function import import_function
        from fnhub.install import files_digest

        assert applied.transform is not None
        spec = applied.spec
        pin = applied.transform
        if is_local_ref(pin.uri):
            function = import_function(pin.uri, config=self.config)
            if files_digest(function.folder) != pin.digest:
                raise ManifestError(f"transform {pin.uri} changed since {applied.name} was "
                                    "applied", hint="apply the feature set again")
        else:
            function = import_function(pin.uri, config=self.config,
                                       insecure_skip_verify=self.installer.insecure_skip_verify,
                                       warn=self.installer.warn)
        source_input, table_output = _transform_ports(function)
        assert spec.transform is not None
        inputs = {**spec.transform.with_, source_input: _as_parquet(source, spec, workdir)}
        result = function.run(env="current", out_dir=workdir / "run", **inputs)
        out = result.outputs.get(table_output)
        if not isinstance(out, Path) or not out.is_file():
            raise ManifestError(f"transform {function.manifest.ref} wrote no {table_output!r} "
                                "table")
        return out

    def ingest(self, name: str, source: Any, *, progress: Progress | None = None,
               engine: str = "local", dask_client: Any = None) -> int:
        """Check and write a table (path, s3:// URI or DataFrame) into the set's dataset,
        through its transform when it has one; returns the rows written. All or nothing.
        `engine="dask"` writes its parts (files, slices) on a Dask cluster, committed as one."""
        applied = self.offline.get(name)
        dask = check_engine(engine) == "dask"
        if applied.transform is None:
            if dask:
                return ingest_dask(self.offline, applied, source, dask_client)
            return self.offline.ingest(applied, _batches(source, applied.spec),
                                       progress=progress)
        with tempfile.TemporaryDirectory(prefix="fnhub-ingest-") as tmp:
            table = self._transformed(applied, source, Path(tmp))
            if dask:
                return ingest_dask(self.offline, applied, table, dask_client)
            return self.offline.ingest(applied, _batches(table, applied.spec),
                                       progress=progress)

    def get_historical_features(self, entity_df: pd.DataFrame, features: list[str], *,
                                engine: str = "local", dask_client: Any = None
                                ) -> pd.DataFrame:
        """`entity_df` with one column per `SET:FEATURE`, point-in-time correct; `engine="dask"`
        splits the work across a Dask cluster (`dask_client`, else the current one)."""
        if check_engine(engine) == "dask":
            return point_in_time_dask(self.offline, entity_df, features, dask_client)
        return point_in_time(self.offline, entity_df, features)

    # -- online ---------------------------------------------------------------------------

    def materialize(self, names: Iterable[str] | None = None, *,
                    start: datetime | str | None = None, end: datetime | str | None = None,
                    progress: Progress | None = None) -> dict[str, int]:
        """Offline → online up to `end` (default now) for the named sets (default: every
        set with `online: true`); returns the entities written per set."""
        end_at = _utc(end, "end")
        start_at = None if start is None else _utc(start, "start")
        if start_at is not None and start_at > end_at:
            raise InvalidInput("start is after end")
        sets = ([self.offline.get(n) for n in names] if names is not None
                else [a for a in self.offline.applied() if a.spec.online])
        return {a.name: materialize_set(self.offline, self.online, a, end=end_at,
                                        start=start_at, progress=progress) for a in sets}

    def get_online_features(self, features: list[str], entity_rows: list[dict[str, Any]], *,
                            parse_keys: bool = False) -> dict[str, list[Any]]:
        """The latest materialized values: entity columns first, then the features in request
        order, None where missing (never materialized, unknown entity, or expired).
        `parse_keys` reads entity values given as text (the CLI's `--entity KEY=VALUE`)."""
        query = self.online_query(features, entity_rows, parse_keys=parse_keys)
        return self.online_answer(query, self.online.lookup(query.requests))

    def online_query(self, features: list[str], entity_rows: list[dict[str, Any]], *,
                     parse_keys: bool = False) -> OnlineQuery:
        """A lookup checked and keyed, not yet sent: the feature server sends the queries of
        several concurrent requests to the online store together."""
        groups = parse_refs(features)
        sets = {name: self.offline.get(name) for name in groups}
        columns: dict[str, str] = {}
        for applied in sets.values():
            for entity in applied.spec.entities:
                columns.setdefault(entity.name, entity.type)
        def key(row: dict[str, Any], column: str, kind: str) -> Any:
            value = self._key(row, column)
            if parse_keys:
                value = parse_text(str(value), kind, f"entity {column!r}")
            return normalize(value, kind, f"entity {column!r}")

        rows = [{c: key(row, c, t) for c, t in columns.items()} for row in entity_rows]
        out: dict[str, list[Any]] = {c: [row[c] for row in rows] for c in columns}
        requests = []
        for name, wanted in groups.items():
            check_features(sets[name], wanted)
            entities = sets[name].spec.entities
            requests.append((name, [entity_key([row[e.name] for e in entities])
                                    for row in rows]))
        return OnlineQuery(groups=groups, sets=sets, out=out, requests=requests)

    def online_answer(self, query: OnlineQuery, found: list[Lookup]) -> dict[str, list[Any]]:
        """The answer to `query` from what the online store returned for its requests."""
        out = query.out
        for (name, wanted), (state, stored) in zip(query.groups.items(), found, strict=True):
            values = self._decode(query.sets[name], wanted, state, stored)
            for feature in wanted:
                out[f"{name}:{feature}"] = values[feature]
        return out

    @staticmethod
    def _key(row: dict[str, Any], column: str) -> Any:
        if not isinstance(row, dict) or column not in row or row[column] is None:
            raise InvalidInput(f"every entity row needs a value for {column!r}")
        return row[column]

    @staticmethod
    def _decode(applied: AppliedSet, wanted: list[str], state: dict[str, Any] | None,
                stored: list[str | None]) -> dict[str, list[Any]]:
        """Stored values as typed columns; None where missing, expired or of an older version."""
        spec = applied.spec
        types = {f.name: f.type for f in spec.features}
        # values whose JSON type already is the feature's Python type need no normalize()
        exact = {f: _JSON_TYPES.get(types[f]) for f in wanted}
        out: dict[str, list[Any]] = {f: [None] * len(stored) for f in wanted}
        if state is None or state.get("version") != applied.version:
            return out
        ttl = spec.ttl_delta
        oldest = datetime.fromisoformat(state["end"]) - ttl if ttl is not None else None
        for i, raw_value in enumerate(stored):
            if raw_value is None:
                continue
            value = orjson.loads(raw_value)
            if oldest is not None and datetime.fromisoformat(value["e"]) < oldest:
                continue  # expired at the materialized time
            features = value["v"]
            for feature in wanted:
                raw = features.get(feature)
                out[feature][i] = raw if raw is None or type(raw) is exact[feature] \
                    else normalize(raw, types[feature], feature)
        return out
