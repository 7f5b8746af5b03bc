"""The Arrow schema of a feature set, and the checks every ingested batch passes.

A batch is accepted when it has every column of the set with a compatible type (integers
for `int`; integers or floats for `float`; text for `str`; booleans for `bool`;
timezone-aware timestamps for `timestamp`), and no null entity key, event time or created
time. Accepted batches are cast to the set's exact types (int64, float64, UTC microseconds).
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from fnhub.core.errors import InvalidInput
from fnhub.core.featureset import FeatureSetSpec

TIMESTAMP = pa.timestamp("us", tz="UTC")
ARROW_TYPES: dict[str, pa.DataType] = {
    "int": pa.int64(), "float": pa.float64(), "str": pa.string(), "bool": pa.bool_(),
    "timestamp": TIMESTAMP,
}
INGEST = "_ingest"  # which ingest wrote a row (its id: later ingests have higher ids)
ROW = "_row"  # the row's position within its ingest
_ACCEPTS: dict[str, Callable[[pa.DataType], bool]] = {
    "int": pa.types.is_integer,
    "float": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t),
    "str": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "bool": pa.types.is_boolean,
    "timestamp": pa.types.is_timestamp,
}


def arrow_schema(spec: FeatureSetSpec) -> pa.Schema:
    """The stored schema: the set's columns in order, then the ingest bookkeeping."""
    fields = [pa.field(name, ARROW_TYPES[kind], nullable=True)
              for name, kind in spec.columns().items()]
    return pa.schema([*fields, pa.field(INGEST, pa.int64()), pa.field(ROW, pa.int64())])


def required(spec: FeatureSetSpec) -> list[str]:
    """Columns that may never be null: entity keys, event time, created time."""
    return [e.name for e in spec.entities] + [spec.timestamp] + (
        [spec.created] if spec.created else [])


def check_schema(schema: pa.Schema, spec: FeatureSetSpec, where: str) -> None:
    """Every column present with a compatible type; timestamps timezone-aware."""
    for name, kind in spec.columns().items():
        index = schema.get_field_index(name)
        if index < 0:
            raise InvalidInput(f"{where}: missing column {name!r} ({kind})",
                               hint=f"the table has: {', '.join(schema.names) or 'no columns'}")
        actual = schema.field(index).type
        if not _ACCEPTS[kind](actual):
            raise InvalidInput(f"{where}: column {name!r} has type {actual}, expected {kind}")
        if kind == "timestamp" and actual.tz is None:
            raise InvalidInput(f"{where}: column {name!r} holds timestamps without a timezone",
                               hint="make them timezone-aware (e.g. UTC) before ingesting")


def conform(batch: pa.RecordBatch, spec: FeatureSetSpec, where: str) -> pa.Table:
    """The batch checked and cast to the set's columns (extra columns dropped)."""
    check_schema(batch.schema, spec, where)
    columns = []
    for name, kind in spec.columns().items():
        column = batch.column(name)
        if name in required(spec) and column.null_count:
            first = pc.index(pc.is_null(column), True).as_py()
            raise InvalidInput(f"{where}: column {name!r} has {column.null_count} null "
                               f"value(s), the first at row {first}; entity keys and "
                               "timestamps may not be null")
        try:
            columns.append(column.cast(ARROW_TYPES[kind], safe=True))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InvalidInput(f"{where}: column {name!r} cannot be stored as {kind}: "
                               f"{exc}") from None
    return pa.Table.from_arrays(columns, names=list(spec.columns()))
