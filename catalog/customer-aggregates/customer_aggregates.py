"""Per-customer rolling aggregates over a transactions table (fnhub catalog): the transform
of the customer-features feature set.

One output row per transaction, at that transaction's time, holding the customer's totals
over the trailing window up to and including it. Rows at event time, never later: a feature
store serving them point in time then gives a model exactly what was known at that moment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from vendor.tables import output_dir, read_table, write_atomic

KEY, TIME, AMOUNT = "customer_id", "event_timestamp", "amount"
MAX_WINDOW_DAYS = 3650


def customer_aggregates(transactions: Path, window_days: int = 7) -> dict[str, Any]:
    """Write `features.parquet`: customer_id, event_timestamp, spend_Nd, txn_count_Nd,
    avg_amount_Nd (N = window_days), sorted by time then customer."""
    if isinstance(window_days, bool) or not isinstance(window_days, int) \
            or not 1 <= window_days <= MAX_WINDOW_DAYS:
        raise ValueError(f"window_days must be an integer from 1 to {MAX_WINDOW_DAYS}, "
                         f"got {window_days!r}")
    table = read_table(Path(transactions), "transactions", require_rows=True)
    missing = [c for c in (KEY, TIME, AMOUNT) if c not in table.columns]
    if missing:
        raise ValueError(f"transactions lacks column(s) {', '.join(missing)}")
    times = pd.to_datetime(table[TIME], utc=False, errors="coerce")
    if times.dt.tz is None:
        raise ValueError(f"transactions column {TIME} has no timezone; write it in UTC")
    if times.isna().any() or table[KEY].isna().any():
        raise ValueError(f"transactions has rows without {KEY} or {TIME}")
    if not pd.api.types.is_numeric_dtype(table[AMOUNT]):
        raise ValueError(f"transactions column {AMOUNT} must be numeric, "
                         f"got {table[AMOUNT].dtype}")

    frame = pd.DataFrame({KEY: table[KEY].astype("int64"),
                          TIME: times.dt.tz_convert("UTC").astype("datetime64[us, UTC]"),
                          AMOUNT: table[AMOUNT].astype("float64")})
    frame = frame.sort_values([KEY, TIME], kind="stable", ignore_index=True)
    window = f"{window_days}D"  # time-based: closed on the right, so the row itself counts
    rolling = frame.groupby(KEY, sort=False).rolling(window, on=TIME)[AMOUNT]
    spend = rolling.sum().to_numpy()
    count = rolling.count().to_numpy()
    suffix = f"_{window_days}d"
    out = pd.DataFrame({
        KEY: frame[KEY],
        TIME: frame[TIME],
        f"spend{suffix}": spend.round(2),
        f"txn_count{suffix}": count.astype("int64"),
        f"avg_amount{suffix}": (spend / count).round(2),
    }).sort_values([TIME, KEY], kind="stable", ignore_index=True)

    target = output_dir("customer-aggregates-") / "features.parquet"
    write_atomic(target, lambda path: out.to_parquet(path, index=False))
    return {"features": target, "n_rows": len(out)}
