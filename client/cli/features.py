"""`hub features`: apply feature sets, ingest, materialize, read training and online data.

The work lives in `fnhub.features.store.FeatureStore`; these commands parse and print.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from fnhub import progress
from fnhub.cli import context
from fnhub.core.console import console, emit_json, warn
from fnhub.core.errors import InvalidInput
from fnhub.features.server import json_value as _json_value

app = typer.Typer(help="The feature store: feature sets from the hub, point-in-time training "
                       "data, online features.\n\n"
                       "Example: `hub features apply hub://acme/driver-stats:^1`",
                  no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
FeaturesOpt = Annotated[str, typer.Option(
    "--features", help="Comma-separated SET:FEATURE references, e.g. "
                       "driver-stats:conv_rate,driver-stats:acc_rate")]
EngineOpt = Annotated[Literal["local", "dask"], typer.Option(
    help="local, or dask: split across the Dask cluster at DASK_SCHEDULER_ADDRESS (else a "
         "local one); the offline store must be reachable from every worker.")]


@app.callback()
def _stores(ctx: typer.Context,
            offline: Annotated[str | None, typer.Option(
                help="Offline store: a folder or s3://BUCKET/PREFIX (default: "
                     "FNHUB_FEATURES_OFFLINE, then config.toml, then FNHUB_HOME).")] = None,
            online: Annotated[str | None, typer.Option(
                help="Online store: a SQLite path, redis://HOST:PORT/DB or postgresql://... "
                     "(default: FNHUB_FEATURES_ONLINE, then config.toml, then "
                     "FNHUB_HOME).")] = None) -> None:
    """Work with the feature store."""
    ctx.obj = {"offline": offline, "online": online}


def _store(ctx: typer.Context, insecure_skip_verify: bool = False) -> Any:
    from fnhub.features.store import FeatureStore  # pyarrow and duckdb load only here

    return FeatureStore(offline=ctx.obj["offline"], online=ctx.obj["online"],
                        config=context.config(), insecure_skip_verify=insecure_skip_verify,
                        warn=warn)


def _refs(text: str) -> list[str]:
    return [r.strip() for r in text.split(",") if r.strip()]


@app.command()
def apply(ctx: typer.Context,
          refs: Annotated[list[str], typer.Argument(help="hub://NS/NAME[:VERSION] or a folder "
                                                         "with a featureset.yaml")],
          insecure_skip_verify: Annotated[bool, typer.Option(
              "--insecure-skip-verify", help="Do not check signatures (dangerous).")] = False,
          as_json: JsonOpt = False) -> None:
    """Register feature sets in the store (verified like functions; transforms pinned).

    Examples: `hub features apply hub://acme/driver-stats:^1`, `hub features apply ./stats`
    """
    with _store(ctx, insecure_skip_verify) as store:
        applied = [store.apply(ref) for ref in refs]
    if as_json:
        emit_json(applied)
        return
    for a in applied:
        pin = f", transform {a.transform.uri}" if a.transform else ""
        signer = "" if a.verified else "  [red]UNVERIFIED[/red]"
        console.print(f"applied {a.name} {a.version} ({a.digest[:19]}…{pin}){signer}")


@app.command("list")
def list_sets(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the feature sets applied in the store.

    Example: `hub features list --json`
    """
    with _store(ctx) as store:
        applied = store.list()
    if as_json:
        emit_json(applied)
        return
    table = Table("set", "version", "from", "ttl", "features", "verified")
    for a in applied:
        table.add_row(a.name, a.version, a.source, a.spec.ttl or "-",
                      ", ".join(f.name for f in a.spec.features), "yes" if a.verified else "NO")
    console.print(table if applied else "no feature sets applied; `hub features apply URI`")


@app.command()
def ingest(ctx: typer.Context,
           name: Annotated[str, typer.Argument(help="The feature set's name.")],
           source: Annotated[str, typer.Option(help="A Parquet or CSV file, a Parquet "
                                                    "folder, or s3://... .")],
           engine: EngineOpt = "local",
           as_json: JsonOpt = False) -> None:
    """Check and write a table into a feature set, through its transform if it has one.

    All or nothing: a bad row anywhere leaves the store unchanged.

    Example: `hub features ingest driver-stats --source stats.parquet`
    """
    with _store(ctx) as store, progress.rows(f"ingest {name}") as advance:
        written = store.ingest(name, source, progress=advance, engine=engine)
    if as_json:
        emit_json({"feature_set": name, "rows": written})
    else:
        console.print(f"ingested {written} rows into {name}")


@app.command()
def materialize(ctx: typer.Context,
                names: Annotated[list[str] | None, typer.Argument(
                    help="Feature sets (default: every set with online: true).")] = None,
                start: Annotated[str | None, typer.Option(
                    help="Recompute entities with rows from this time (ISO 8601).")] = None,
                end: Annotated[str | None, typer.Option(
                    help="Materialize as of this time (ISO 8601; default now).")] = None,
                as_json: JsonOpt = False) -> None:
    """Copy the latest in-ttl values per entity to the online store, incrementally.

    Example: `hub features materialize --end 2026-12-01T00:00:00Z`
    """
    with _store(ctx) as store, progress.rows("materialize") as advance:
        written = store.materialize(names or None, start=start, end=end, progress=advance)
    if as_json:
        emit_json(written)
        return
    for name, count in written.items():
        console.print(f"materialized {count} entities of {name}")


def _read_table(path: Path) -> Any:
    import pandas as pd

    if not path.is_file():
        raise InvalidInput(f"entities file {path} does not exist")
    if path.suffix == ".csv":
        frame = pd.read_csv(path)
        if "event_timestamp" in frame:
            try:
                frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"],
                                                          format="ISO8601")
            except (ValueError, TypeError) as exc:
                raise InvalidInput(f"{path}: event_timestamp: {exc}") from None
        return frame
    return pd.read_parquet(path)


@app.command("get-historical")
def get_historical(ctx: typer.Context,
                   entities: Annotated[Path, typer.Option(
                       help="Parquet or CSV: entity columns and a timezone-aware "
                            "event_timestamp.")],
                   features: FeaturesOpt,
                   output: Annotated[Path, typer.Option("-o", "--output",
                                                        help="Parquet or CSV to write.")],
                   engine: EngineOpt = "local",
                   as_json: JsonOpt = False) -> None:
    """Point-in-time correct training data: the entities with each feature as of their time.

    Example: `hub features get-historical --entities orders.parquet
    --features driver-stats:conv_rate -o train.parquet`
    """
    frame = _read_table(entities)
    with _store(ctx) as store:
        result = store.get_historical_features(frame, _refs(features), engine=engine)
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".csv":
        result.to_csv(output, index=False)
    else:
        result.to_parquet(output, index=False)
    if as_json:
        emit_json({"path": str(output), "rows": len(result), "columns": list(result.columns)})
    else:
        console.print(f"wrote {len(result)} rows to {output}")


def _entity_rows(pairs: list[str]) -> list[dict[str, str]]:
    """`--entity driver_id=1 --entity driver_id=2` → one row per value (keys repeat in step)."""
    columns: dict[str, list[str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--entity {pair!r}: expected KEY=VALUE")
        columns.setdefault(key, []).append(value)
    counts = {len(v) for v in columns.values()}
    if len(counts) != 1:
        raise InvalidInput("every entity key needs the same number of --entity values")
    return [{k: v[i] for k, v in columns.items()} for i in range(counts.pop())]


@app.command("get-online")
def get_online(ctx: typer.Context, features: FeaturesOpt,
               entity: Annotated[list[str], typer.Option(
                   help="KEY=VALUE; repeat for more entities (or for several keys).")],
               as_json: JsonOpt = False) -> None:
    """The latest materialized values for some entities (None where missing).

    Example: `hub features get-online --features driver-stats:conv_rate --entity driver_id=1001`
    """
    with _store(ctx) as store:
        result = store.get_online_features(_refs(features), _entity_rows(entity),
                                           parse_keys=True)
    if as_json:
        emit_json({k: [_json_value(v) for v in values] for k, values in result.items()})
        return
    table = Table(*result)
    for row in zip(*result.values(), strict=True):
        table.add_row(*(str(_json_value(v)) if v is not None else "-" for v in row))
    console.print(table)


@app.command()
def serve(ctx: typer.Context,
          host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to listen on.")] = 6566,
          workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1) -> None:
    """Serve online features over HTTP: POST /features/v1/online, GET /healthz, /metrics.

    Stops gracefully on SIGTERM (in-flight requests finish). Example:
    `hub features serve --port 6566 --workers 2`
    """
    from fnhub.features.server import serve as run_server

    # each worker process builds its store from the environment
    for key, name in (("offline", "FNHUB_FEATURES_OFFLINE"), ("online", "FNHUB_FEATURES_ONLINE")):
        if ctx.obj[key]:
            os.environ[name] = ctx.obj[key]
    console.print(f"serving features on http://{host}:{port} ({workers} worker(s))")
    run_server(host, port, workers)
