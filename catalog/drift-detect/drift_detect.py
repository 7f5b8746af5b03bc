"""Data drift between a reference table and a current one (fnhub catalog: drift-detect).

Every feature gets a magnitude (PSI, the population stability index) and a significance test
(Kolmogorov-Smirnov for numbers, chi-square for categories). Reporting both matters: a test's
p-value shrinks towards 0 for tiny shifts once the tables are large, while PSI is noisy on
small tables; looking at both lets the reader tell a big shift from a merely certain one.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from vendor.tables import is_numeric, output_dir, read_table_strictly, write_atomic

REPORT_COLUMNS = ["feature", "kind", "psi", "ks_stat", "ks_p", "chi2_p", "drifted"]
EPSILON = 1e-4  # floor for a bin's share, so PSI stays finite when a bin is empty on one side
RULE = (
    "a feature drifts when psi >= psi_threshold or its test's p-value < p_value "
    "(KS for numeric features, chi-square for categorical ones); "
    "the tables drift when at least one feature does"
)


def drift_detect(
    reference: Path,
    current: Path,
    label_column: str | None = None,
    psi_threshold: float = 0.2,
    p_value: float = 0.05,
    bins: int = 10,
) -> dict[str, Any]:
    """Compare each feature of `current` with `reference`; write the report, summary and page.

    Columns only `current` has are left out and listed as `ignored_columns`.
    """
    _check_parameters(psi_threshold, p_value, bins)
    ref = read_table_strictly(Path(reference))
    cur = read_table_strictly(Path(current))
    features, ignored = feature_columns(ref, cur, label_column)

    rows = [compare(ref[name], cur[name], bins) for name in features]
    report = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    report["feature"] = features
    report["drifted"] = [is_drifted(row, psi_threshold, p_value) for row in rows]
    drifted = [str(name) for name, flag in zip(features, report["drifted"], strict=True) if flag]
    summary = {
        "psi_threshold": psi_threshold,
        "p_value": p_value,
        "bins": bins,
        "n_reference": len(ref),
        "n_current": len(cur),
        "n_features": len(features),
        "n_drifted": len(drifted),
        "drifted_features": drifted,
        "ignored_columns": ignored,
        "share": len(drifted) / len(features),
        "drifted": bool(drifted),
        "rule": RULE,
    }

    out_dir = output_dir("drift-detect-")
    paths = {name: out_dir / name for name in ("report.csv", "summary.json", "report.html")}
    write_atomic(paths["report.csv"], lambda p: report.to_csv(p, index=False))
    write_atomic(
        paths["summary.json"],
        lambda p: p.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8"),
    )
    page = render_html(report, summary, Path(reference).name, Path(current).name)
    write_atomic(paths["report.html"], lambda p: p.write_text(page, encoding="utf-8"))
    return {
        "report": paths["report.csv"],
        "summary": paths["summary.json"],
        "drifted": bool(drifted),
        "html": paths["report.html"],
    }


def _check_parameters(psi_threshold: float, p_value: float, bins: int) -> None:
    for name, value in (("psi_threshold", psi_threshold), ("p_value", p_value)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if psi_threshold <= 0:
        raise ValueError(f"psi_threshold must be positive, got {psi_threshold!r}")
    if not 0 <= p_value <= 1:
        raise ValueError(f"p_value must be between 0 and 1, got {p_value!r}")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins must be an integer of at least 2, got {bins!r}")


def feature_columns(
    ref: pd.DataFrame, cur: pd.DataFrame, label_column: str | None
) -> tuple[list[Any], list[str]]:
    """The features to compare, in the reference's order, and the columns only `current` has.

    Those extra columns (a scored batch's predictions, say) are ignored rather than refused:
    the reference cannot say what they should look like. A reference feature missing from
    `current` is an error, since its drift cannot be measured; the label may be missing, as
    it is not compared and a batch to score usually has none.
    """
    if label_column is not None and label_column not in ref.columns:
        raise ValueError(
            f"label column {label_column!r} not found in the reference "
            f"(columns: {', '.join(map(str, ref.columns))})"
        )
    features = [c for c in ref.columns if c != label_column]
    if not features:
        raise ValueError(f"no feature columns to compare besides label column {label_column!r}")
    cur_columns, ref_columns = set(cur.columns), set(ref.columns)
    missing = [str(c) for c in features if c not in cur_columns]
    if missing:
        raise ValueError(f"current lacks column(s) of the reference: {', '.join(missing)}")
    ignored = [str(c) for c in cur.columns if c not in ref_columns]
    return features, ignored


def compare(ref: pd.Series, cur: pd.Series, bins: int) -> dict[str, Any]:
    """One report row (without `drifted`). A column numeric on one side only is categorical."""
    if is_numeric(ref) and is_numeric(cur):
        ref_values, cur_values = ref.astype("float64"), cur.astype("float64")
        ref_counts, cur_counts = numeric_bin_counts(ref_values, cur_values, bins)
        ks_stat, ks_p = ks_test(ref_values.dropna(), cur_values.dropna())
        return {
            "kind": "numeric",
            "psi": psi(ref_counts, cur_counts),
            "ks_stat": ks_stat,
            "ks_p": ks_p,
            "chi2_p": math.nan,
        }
    if is_numeric(ref) != is_numeric(cur):
        ref, cur = ref.astype("string"), cur.astype("string")
    counts = pd.concat(
        [ref.value_counts(dropna=False), cur.value_counts(dropna=False)], axis=1
    ).fillna(0)  # one row per category seen on either side, missing values included
    table = counts.to_numpy(dtype="float64").T
    chi2_p = float(stats.chi2_contingency(table).pvalue) if table.shape[1] > 1 else 1.0
    return {
        "kind": "categorical",
        "psi": psi(table[0], table[1]),
        "ks_stat": math.nan,
        "ks_p": math.nan,
        "chi2_p": chi2_p,
    }


def numeric_bin_counts(ref: pd.Series, cur: pd.Series, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts per quantile bin of the reference, plus one bin for missing values.

    Edges are the reference's inner quantiles, deduplicated (a column with few distinct values
    gets fewer bins); the outer bins are open, so current values beyond the reference's range
    still count.
    """
    present = ref.dropna()
    finite = present[np.isfinite(present)]
    levels = np.linspace(0, 1, bins + 1)[1:-1]
    edges = np.unique(np.quantile(finite, levels)) if len(finite) else np.array([])

    def counts(values: pd.Series) -> np.ndarray:
        found = values.dropna().to_numpy()
        per_bin = np.bincount(np.searchsorted(edges, found, side="right"), minlength=len(edges) + 1)
        return np.append(per_bin, values.isna().sum()).astype("float64")

    return counts(ref), counts(cur)


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """PSI = sum((cur - ref) * ln(cur / ref)) over bin shares floored at EPSILON, renormalised."""
    ref_share = _smoothed_shares(ref_counts)
    cur_share = _smoothed_shares(cur_counts)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def _smoothed_shares(counts: np.ndarray) -> np.ndarray:
    shares = np.maximum(counts / counts.sum(), EPSILON)
    return shares / shares.sum()


def ks_test(ref: pd.Series, cur: pd.Series) -> tuple[float, float]:
    """Two-sample KS on the non-missing values; NaN when a side has none to compare."""
    if ref.empty or cur.empty:
        return math.nan, math.nan
    result = stats.ks_2samp(ref.to_numpy(), cur.to_numpy())
    return float(result.statistic), float(result.pvalue)


def is_drifted(row: dict[str, Any], psi_threshold: float, p_value: float) -> bool:
    """See RULE; a NaN p-value (nothing to test) never signals drift on its own."""
    test_p = row["ks_p"] if row["kind"] == "numeric" else row["chi2_p"]
    return bool(row["psi"] >= psi_threshold or test_p < p_value)


def render_html(report: pd.DataFrame, summary: dict[str, Any], ref_name: str, cur_name: str) -> str:
    """A small self-contained page (inline CSS, no scripts); every text from the data is escaped."""

    def cell(value: Any, spec: str) -> str:
        if isinstance(value, float) and math.isnan(value):
            return "<td>&ndash;</td>"
        return f"<td>{format(value, spec)}</td>"

    rows = []
    for row in report.itertuples(index=False):
        css = ' class="drift"' if row.drifted else ""
        rows.append(
            f'<tr{css}><th scope="row">{html.escape(str(row.feature))}</th>'
            f"<td>{html.escape(row.kind)}</td>"
            + cell(row.psi, ".4f")
            + cell(row.ks_stat, ".4f")
            + cell(row.ks_p, ".3g")
            + cell(row.chi2_p, ".3g")
            + f"<td>{'yes' if row.drifted else 'no'}</td></tr>"
        )
    verdict = (
        f"Drift detected in {summary['n_drifted']} of {summary['n_features']} features"
        if summary["drifted"]
        else f"No drift detected in {summary['n_features']} features"
    )
    ignored = ""
    if summary["ignored_columns"]:
        names = ", ".join(f"<code>{html.escape(c)}</code>" for c in summary["ignored_columns"])
        ignored = f"<p>Only in current, not compared: {names}.</p>\n"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Drift report: {html.escape(cur_name)} vs {html.escape(ref_name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; }}
th[scope="row"], td:nth-child(2) {{ text-align: left; }}
tr.drift {{ background: #fde2e1; }}
.verdict {{ font-weight: bold; }}
</style>
</head>
<body>
<h1>Drift report</h1>
<p>Reference: <code>{html.escape(ref_name)}</code> ({summary["n_reference"]} rows);
current: <code>{html.escape(cur_name)}</code> ({summary["n_current"]} rows).</p>
<p class="verdict">{verdict}.</p>
<p>Rule: {html.escape(RULE)}; psi_threshold = {summary["psi_threshold"]:g},
p_value = {summary["p_value"]:g}, bins = {summary["bins"]}.</p>
{ignored}<table>
<thead><tr><th>feature</th><th>kind</th><th>PSI</th><th>KS statistic</th><th>KS p-value</th>
<th>chi-square p-value</th><th>drifted</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
</body>
</html>
"""
