"""`engine="dask"` (design §10, past one machine): ingest and point-in-time retrieval split
across a Dask cluster that shares nothing with the caller but the offline store (a folder
every worker sees, or s3://).

Ingest: each part of the source (a Parquet file, a DataFrame slice) is written by a worker,
uncommitted; the caller commits them all in one commit file, so the ingest stays all or nothing.

The entity rows are split by a hash of their entity keys, so every key's rows land in one
partition; each worker runs the same DuckDB join as the local engine on its partition (which
reads only the feature rows of its keys), and the caller puts the rows back in input order.
The result is therefore exactly the local engine's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fnhub.core.errors import FnhubError, InvalidInput
from fnhub.features.historical import _entities, check_request, point_in_time
from fnhub.features.offline import AppliedSet, CommitFile, OfflineStore, new_ingest_id
from fnhub.features.sources import batches, source_parts

if TYPE_CHECKING:
    import pandas as pd
    from distributed import Client

ENGINES = ("local", "dask")
POSITION = "__fnhub_position"


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise InvalidInput(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    return engine


def dask_client() -> Client:
    """The current Dask client; else one for DASK_SCHEDULER_ADDRESS (dask's config), else a
    local cluster."""
    try:
        from distributed import Client, default_client
    except ImportError:
        raise FnhubError('engine="dask" needs Dask: pip install "fnhub[dask]"') from None
    try:
        return default_client()
    except ValueError:
        return Client()


def _write_part(offline_url: str, applied: AppliedSet, ingest: int, source: Any,
                first_row: int, part: int) -> tuple[int, list[CommitFile]]:
    """One part of an ingest, written uncommitted (on a worker)."""
    return OfflineStore(offline_url).write_part(applied, ingest, batches(source, applied.spec),
                                                first_row=first_row, part=part)


def ingest_dask(offline: OfflineStore, applied: AppliedSet, source: Any,
                client: Client | None = None) -> int:
    """`OfflineStore.ingest` with the source's parts written by the cluster's workers, rows
    numbered as the local engine numbers them; one commit makes them visible together, and
    if any part fails every part's files are deleted."""
    from distributed import wait

    client = client or dask_client()
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    parts = source_parts(source, 2 * workers)
    ingest = new_ingest_id()
    firsts = [sum(rows for _p, rows in parts[:i]) for i in range(len(parts))]
    futures = [client.submit(_write_part, offline.url, applied, ingest, piece, first, i,
                             pure=False)
               for i, ((piece, _rows), first) in enumerate(zip(parts, firsts, strict=True))]
    wait(futures)
    done = [f.result() for f in futures if f.status == "finished"]
    written = [record for _rows, files in done for record in files]
    failed = [f for f in futures if f.status != "finished"]
    try:
        if failed:
            failed[0].result()  # raises the part's own error (it deleted its own files)
        rows = sum(rows for rows, _files in done)
        offline.commit(applied, ingest, rows, written)
    except BaseException:
        offline.delete_files(applied, written)
        raise
    return rows


def _partition(offline_url: str, part: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """One partition's feature columns, indexed by the rows' input positions (on a worker)."""
    positions = part[POSITION].to_numpy()
    result = point_in_time(OfflineStore(offline_url), part.drop(columns=[POSITION])
                           .reset_index(drop=True), features)
    result = result[features]
    result.index = positions
    return result


def point_in_time_dask(offline: OfflineStore, entity_df: pd.DataFrame, features: list[str],
                       client: Client | None = None) -> pd.DataFrame:
    """`point_in_time`, with the entity rows hash-partitioned by key across the cluster."""
    import pandas as pd

    _groups, _sets, keys = check_request(offline, features)
    _entities(entity_df, keys)  # bad input is refused here, before any work is sent
    if not len(entity_df):
        return point_in_time(offline, entity_df, features)
    client = client or dask_client()
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    count = min(len(entity_df), 2 * workers)
    buckets = pd.util.hash_pandas_object(entity_df[list(keys)], index=False) % count
    frame = entity_df.reset_index(drop=True).assign(**{POSITION: range(len(entity_df))})
    parts = [frame[(buckets == i).to_numpy()] for i in range(count)]
    futures = client.map(_partition, [offline.url] * len(parts), parts,
                         [features] * len(parts), pure=False)
    results = [r for r in client.gather(futures) if len(r)]
    columns = pd.concat(results).sort_index()
    out = entity_df.copy()
    for feature in features:
        out[feature] = columns[feature].array  # positional: entity_df's index may repeat
    return out
