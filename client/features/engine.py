"""`engine="dask"` (design §10, past one machine): point-in-time retrieval split across a Dask
cluster that shares nothing with the caller but the offline store (a folder every worker sees,
or s3://).

The entity rows are split by a hash of their entity keys, so every key's rows land in one
partition; each worker runs the same DuckDB join as the local engine on its partition (which
reads only the feature rows of its keys), and the caller puts the rows back in input order.
The result is therefore exactly the local engine's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fnhub.core.errors import FnhubError, InvalidInput
from fnhub.features.historical import _entities, check_request, point_in_time
from fnhub.features.offline import OfflineStore

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
