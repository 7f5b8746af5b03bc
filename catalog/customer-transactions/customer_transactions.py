"""A synthetic card transactions table (fnhub catalog), the source of the customer-features
example feature set.

Each customer has a spending level and a shopping rhythm of their own, so per-customer
aggregates carry real signal; a fraudulent transaction is a burst of unusually large amounts,
so a model trained on those aggregates can learn something. Seeded, so the same inputs always
give the same table; nothing is downloaded.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from vendor.checks import check_int
from vendor.tables import output_dir, write_atomic

MAX_ROWS = 5_000_000  # the table is built in memory before it is written
MAX_SEED = 2**32 - 1
FIRST_CUSTOMER = 1000
CATEGORIES = ["grocery", "restaurant", "travel", "online", "fuel", "electronics"]
FRAUD_FACTOR = 8.0  # a fraudulent amount is this many times the customer's usual amount


def customer_transactions(
    n_customers: int = 200,
    days: int = 60,
    end: str = "2026-12-01T00:00:00Z",
    fraud_rate: float = 0.02,
    seed: int = 42,
) -> dict[str, Any]:
    """Write `transactions.parquet` into the output folder, sorted by event time."""
    check_int("n_customers", n_customers, 1)
    check_int("days", days, 1)
    check_int("seed", seed, 0, MAX_SEED)
    if isinstance(fraud_rate, bool) or not isinstance(fraud_rate, int | float) \
            or not 0 <= fraud_rate < 1:
        raise ValueError(f"fraud_rate must be a number in [0, 1), got {fraud_rate!r}")
    stop = _end_time(end)

    rng = np.random.default_rng(seed)
    per_day = rng.gamma(shape=2.0, scale=1.0, size=n_customers)  # each customer's rhythm
    counts = rng.poisson(per_day * days)
    total = int(counts.sum())
    if total > MAX_ROWS:
        raise ValueError(f"{total:,} transactions is over the limit of {MAX_ROWS:,}; "
                         "ask for fewer customers or days")
    customers = np.repeat(np.arange(FIRST_CUSTOMER, FIRST_CUSTOMER + n_customers), counts)
    usual = np.repeat(rng.lognormal(mean=3.5, sigma=0.6, size=n_customers), counts)
    offsets = rng.uniform(0, days * 86_400, size=total)
    amounts = usual * rng.lognormal(mean=0.0, sigma=0.5, size=total)
    fraud = rng.random(total) < fraud_rate
    amounts[fraud] *= FRAUD_FACTOR * rng.uniform(0.5, 1.5, size=int(fraud.sum()))

    frame = pd.DataFrame({
        "customer_id": customers.astype("int64"),
        "event_timestamp": pd.Timestamp(stop) - pd.to_timedelta(offsets.round(), unit="s"),
        "amount": amounts.round(2),
        "merchant_category": rng.choice(CATEGORIES, size=total),
        "is_fraud": fraud.astype("int64"),
    }).sort_values(["event_timestamp", "customer_id"], kind="stable", ignore_index=True)
    frame.insert(0, "transaction_id", np.arange(1, total + 1, dtype="int64"))
    frame["event_timestamp"] = frame["event_timestamp"].astype("datetime64[us, UTC]")

    target = output_dir("customer-transactions-") / "transactions.parquet"
    write_atomic(target, lambda path: frame.to_parquet(path, index=False))
    return {"dataset": target, "n_rows": total}


def _end_time(text: Any) -> datetime:
    """`end` as a UTC time; a time without a timezone is refused rather than guessed."""
    if not isinstance(text, str):
        raise ValueError(f"end must be an ISO-8601 time string, got {text!r}")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"end must be an ISO-8601 time, got {text!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"end {text!r} has no timezone; add one, like 2026-12-01T00:00:00Z")
    return moment.astimezone(timezone.utc)
