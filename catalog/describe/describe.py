"""Summary statistics, correlations, histograms and an HTML report of a table (fnhub catalog:
describe).

Plots are drawn with matplotlib's object API on an Agg canvas, never through pyplot, so the
function leaves no global backend or figure state behind when it runs in-process.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vendor.tables import is_numeric, output_dir, read_table_strictly, replace_dir, write_atomic

SUMMARY_COLUMNS = [
    "column", "dtype", "count", "missing", "missing_pct", "mean", "std",
    "min", "25%", "50%", "75%", "max", "unique", "top",
]  # fmt: skip
MAX_GROUPS = 10  # more label values than this are grouped, or the legend becomes unreadable
QUANTILE_GROUPS = 4


def describe(table: Path, label_column: str | None = None, bins: int = 20) -> dict[str, Any]:
    """Write `summary.csv`, `correlations.csv`, `plots/` (one histogram per numeric column) and
    `report.html` (all of them on one page) for `table`."""
    frame = read_table_strictly(Path(table))
    if label_column is not None and label_column not in frame.columns:
        raise ValueError(
            f"label column {label_column!r} not found in {Path(table).name} "
            f"(columns: {', '.join(map(str, frame.columns))})"
        )
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")

    out_dir = output_dir("describe-")
    summary_path, correlations_path = out_dir / "summary.csv", out_dir / "correlations.csv"
    report_path = out_dir / "report.html"
    summary = summarize(frame)
    write_atomic(summary_path, lambda path: summary.to_csv(path, index=False))
    correlations = correlate(frame)
    write_atomic(correlations_path, correlations.to_csv)
    plots_dir = out_dir / "plots"
    plot_files = _write_plots(frame, plots_dir, label_column, bins)
    histograms = [(name, (plots_dir / file).read_bytes()) for name, file in plot_files]
    page = render_html(Path(table).name, frame.shape, summary, correlations, histograms)
    write_atomic(report_path, lambda path: path.write_text(page, encoding="utf-8"))
    return {
        "summary": summary_path,
        "correlations": correlations_path,
        "plots": plots_dir,
        "report": report_path,
        "n_rows": int(frame.shape[0]),
        "n_columns": int(frame.shape[1]),
    }


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per column; numeric statistics are left empty for non-numeric columns.

    `top` is the most frequent value (the smallest one on ties), for every column.
    """
    rows = []
    for name in frame.columns:
        series = frame[name]
        missing = int(series.isna().sum())
        modes = series.mode(dropna=True)
        row: dict[str, Any] = {
            "column": name,
            "dtype": str(series.dtype),
            "count": int(series.count()),
            "missing": missing,
            "missing_pct": 100.0 * missing / len(series) if len(series) else 0.0,
            "unique": int(series.nunique(dropna=True)),
            "top": modes.iloc[0] if len(modes) else None,
        }
        if is_numeric(series):
            values = series.astype("float64")
            quartiles = values.quantile([0.25, 0.5, 0.75])
            row |= {
                "mean": values.mean(),
                "std": values.std(),
                "min": values.min(),
                "25%": quartiles[0.25],
                "50%": quartiles[0.5],
                "75%": quartiles[0.75],
                "max": values.max(),
            }
        rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def correlate(frame: pd.DataFrame) -> pd.DataFrame:
    """Pearson correlations of the numeric columns, indexed by a `column` axis for the CSV.

    Each pair uses the rows where both values are finite (missing values and infinities are
    skipped); a pair with too few such rows, or a constant column, gives NaN. With one numeric
    column the matrix is 1x1, with none it is empty: the shape always follows the columns.
    """
    numeric = [name for name in frame.columns if is_numeric(frame[name])]
    matrix = frame[numeric].astype("float64").corr(method="pearson")
    matrix.index.name = "column"
    return matrix


def label_groups(labels: pd.Series) -> pd.Series:
    """Labels to split histograms by: the values themselves when few, else coarser groups.

    A numeric label with many values (a regression target) is cut into quartiles; any other
    label keeps its most frequent values and pools the rest as "(other)".
    """
    if labels.nunique(dropna=True) <= MAX_GROUPS:
        return labels
    if is_numeric(labels):
        return pd.qcut(labels, QUANTILE_GROUPS, duplicates="drop")  # ordered intervals
    text = labels.astype("string")  # also frees categoricals from their fixed categories
    keep = text.value_counts().index[: MAX_GROUPS - 1]
    return text.where(text.isin(keep) | text.isna(), "(other)")


def _write_plots(
    frame: pd.DataFrame, target: Path, label_column: str | None, bins: int
) -> list[tuple[Any, str]]:
    """Draw all histograms into a fresh folder, then swap it in place of any older `plots/`.

    Returns (column, file name) pairs, so the report can embed the very files written here.
    """

    def draw_all(work: Path) -> list[tuple[Any, str]]:
        groups = label_groups(frame[label_column]) if label_column is not None else None
        used: set[str] = set()
        files = []
        for name in frame.columns:
            if not is_numeric(frame[name]):
                continue
            split = groups if name != label_column else None
            figure = _histogram(frame[name], split, label_column, bins)
            file_name = _file_name(str(name), used)
            figure.savefig(work / file_name, format="png", dpi=100)
            files.append((name, file_name))
        return files

    return replace_dir(target, draw_all)


def _histogram(
    series: pd.Series, groups: pd.Series | None, label_column: str | None, bins: int
) -> Figure:
    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    values = series.astype("float64")
    finite = values[np.isfinite(values)]
    axes.set_title(str(series.name))
    axes.set_xlabel(str(series.name))
    axes.set_ylabel("count")
    if finite.empty:
        axes.text(0.5, 0.5, "no finite values", ha="center", va="center",
                  transform=axes.transAxes)  # fmt: skip
        return figure
    edges = np.histogram_bin_edges(finite, bins=bins)  # shared, so the series compare
    if groups is None:
        axes.hist(finite, bins=edges)
        return figure
    for label, part in finite.groupby(groups.loc[finite.index], sort=True, observed=True):
        axes.hist(part, bins=edges, alpha=0.5, histtype="stepfilled", label=str(label))
    axes.legend(title=label_column, fontsize="small")
    return figure


def _file_name(column: str, used: set[str]) -> str:
    """A safe, unique `<column>.png` for any column name (spaces, slashes, unicode...)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", column).strip("._")[:100] or "column"
    name, n = f"{stem}.png", 1
    while name in used:
        n += 1
        name = f"{stem}-{n}.png"
    used.add(name)
    return name


def render_html(
    table_name: str,
    shape: tuple[int, int],
    summary: pd.DataFrame,
    correlations: pd.DataFrame,
    histograms: list[tuple[Any, bytes]],
) -> str:
    """One self-contained page (inline CSS, PNGs as data: URLs, no scripts), so it can be
    mailed or archived as a single file; every text taken from the data is escaped."""
    summary_rows = "\n".join(
        "<tr>" + "".join(_cell(value, ".6g") for value in row) + "</tr>"
        for row in summary.itertuples(index=False)
    )
    missing_rows = "\n".join(
        f"<tr>{_cell(row.column, '')}{_cell(row.missing, '')}"
        f'<td><meter min="0" max="100" value="{row.missing_pct:.1f}"></meter> '
        f"{row.missing_pct:.1f}</td></tr>"
        for row in summary.itertuples(index=False)
    )
    summary_header = "".join(_cell(name, "", "th") for name in summary.columns)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>describe: {html.escape(table_name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; }}
tbody th, tbody td:first-child {{ text-align: left; }}
.wide {{ overflow-x: auto; }}
figure {{ display: inline-block; margin: 0 1rem 1rem 0; }}
img {{ max-width: 100%; height: auto; }}
</style>
</head>
<body>
<h1>describe: <code>{html.escape(table_name)}</code></h1>
<p>{shape[0]} rows &times; {shape[1]} columns.</p>
<h2>Summary</h2>
<div class="wide"><table>
<thead><tr>{summary_header}</tr></thead>
<tbody>
{summary_rows}
</tbody>
</table></div>
<h2>Missing values</h2>
<table>
<thead><tr><th>column</th><th>missing</th><th>missing %</th></tr></thead>
<tbody>
{missing_rows}
</tbody>
</table>
<h2>Correlations (Pearson)</h2>
<div class="wide">{_correlation_table(correlations)}</div>
<h2>Histograms</h2>
{_figures(histograms)}
</body>
</html>
"""


def _correlation_table(correlations: pd.DataFrame) -> str:
    """The matrix with its column names on both axes; a sentence instead of an empty table."""
    if correlations.empty:
        return "<p>No numeric columns, so no correlations.</p>"
    header = "".join(_cell(name, "", "th") for name in correlations.columns)
    body = "\n".join(
        "<tr>" + _cell(name, "", "th") + "".join(_cell(v, ".3f") for v in values) + "</tr>"
        for name, *values in correlations.itertuples(name=None)
    )
    return (
        f"<table>\n<thead><tr><th>column</th>{header}</tr></thead>\n"
        f"<tbody>\n{body}\n</tbody>\n</table>"
    )


def _figures(histograms: list[tuple[Any, bytes]]) -> str:
    """Each PNG inline as a data: URL, named in its alt text and caption."""
    if not histograms:
        return "<p>No numeric columns, so no histograms.</p>"
    return "\n".join(
        f'<figure><img src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" '
        f'alt="histogram of {html.escape(str(name))}">'
        f"<figcaption>{html.escape(str(name))}</figcaption></figure>"
        for name, png in histograms
    )


def _cell(value: Any, spec: str, tag: str = "td") -> str:
    """A table cell: floats formatted by `spec`, missing values as a dash, all text escaped."""
    if not pd.api.types.is_list_like(value) and pd.isna(value):
        text = "&ndash;"
    elif isinstance(value, (float, np.floating)):
        text = format(value, spec)
    else:
        text = html.escape(str(value))
    return f"<{tag}>{text}</{tag}>"
