"""Tests for the describe catalog function, calling the entrypoint directly."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from catalog.testing import PNG_SIGNATURE, load_module, pngs, run_examples, write_table
from fnhub.core.manifest import load_manifest

FOLDER = Path(__file__).resolve().parents[1]
MODULE = load_module(FOLDER)


class Page(HTMLParser):
    """What a browser makes of the report: its elements with their attributes, and its text
    (character references decoded, so escaped data reads as it was in the table)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(path.read_text(encoding="utf-8"))
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    def images(self) -> dict[str, bytes]:
        """Each embedded image by its alt text, decoded from its data: URL."""
        prefix = "data:image/png;base64,"
        found = {}
        for attrs in self.all("img"):
            src, alt = attrs["src"] or "", attrs["alt"] or ""
            assert src.startswith(prefix), src[:40]
            found[alt] = base64.b64decode(src.removeprefix(prefix), validate=True)
        return found


def assert_self_contained(page: Page) -> None:
    """Nothing on the page is fetched from elsewhere, and nothing on it runs."""
    assert not {name for name, _ in page.tags} & {"script", "link", "iframe", "object", "embed"}
    for name, attrs in page.tags:
        for attr in ("src", "href", "srcset", "action", "poster", "data"):
            value = attrs.get(attr)
            assert value is None or value.startswith("data:"), (name, attr, value)
        assert not [a for a in attrs if a.startswith("on")], (name, attrs)
    styles = "".join(page.text)
    assert "url(" not in styles and "@import" not in styles


@pytest.fixture
def mixed() -> pd.DataFrame:
    """Numbers with gaps, text with a clear mode, booleans, and an all-missing column."""
    return pd.DataFrame(
        {
            "x": [1.0, 2.0, np.nan, 4.0, 10.0, np.nan],
            "n": [3, 1, 4, 1, 5, 9],
            "city": ["Oslo", "Rome", "Oslo", None, "Lima", "Oslo"],
            "flag": [True, False, True, True, False, True],
            "empty": [np.nan] * 6,
        }
    )


def test_iris_summary_matches_pandas(iris_csv: Path, out_dir: Path) -> None:
    out = MODULE.describe(iris_csv)
    frame = pd.read_csv(iris_csv)
    assert (out["n_rows"], out["n_columns"]) == (150, 5)
    assert out["summary"] == out_dir / "summary.csv"

    summary = pd.read_csv(out["summary"]).set_index("column")
    assert list(summary.index) == list(frame.columns)
    assert list(summary.columns) == MODULE.SUMMARY_COLUMNS[1:]
    expected = frame.describe().T
    for stat in ["count", "mean", "std", "min", "25%", "50%", "75%", "max"]:
        np.testing.assert_allclose(summary[stat], expected[stat], err_msg=stat)
    assert (summary["missing"] == 0).all()
    assert summary.loc["target", "unique"] == 3
    assert summary.loc["sepal length (cm)", "unique"] == frame["sepal length (cm)"].nunique()
    assert summary.loc["target", "dtype"] == "int64"


def test_missing_values_text_and_boolean_columns(
    mixed: pd.DataFrame, tmp_path: Path, out_dir: Path
) -> None:
    path = tmp_path / "mixed.parquet"
    mixed.to_parquet(path, index=False)
    out = MODULE.describe(path)
    summary = pd.read_csv(out["summary"]).set_index("column")

    assert summary.loc["x", "missing"] == 2
    assert summary.loc["x", "missing_pct"] == pytest.approx(100 * 2 / 6)
    assert summary.loc["x", "count"] == 4
    assert summary.loc["x", "mean"] == pytest.approx(mixed["x"].mean())
    assert summary.loc["x", "50%"] == pytest.approx(3.0)
    assert summary.loc["n", "top"] == "1"  # the only repeated value
    assert summary.loc["city", "top"] == "Oslo"
    assert summary.loc["city", "unique"] == 3
    assert summary.loc["city", "missing"] == 1
    assert np.isnan(summary.loc["city", "mean"])
    assert np.isnan(summary.loc["flag", "mean"])  # booleans are not summed up as numbers
    assert summary.loc["empty", "missing_pct"] == 100.0
    assert summary.loc["empty", "unique"] == 0

    # Histograms for numeric columns only (not text, not booleans); the empty one still gets one.
    plots = pngs(out["plots"])
    assert sorted(plots) == ["empty.png", "n.png", "x.png"]
    assert all(data.startswith(PNG_SIGNATURE) for data in plots.values())


def test_iris_correlations(iris_csv: Path, out_dir: Path) -> None:
    out = MODULE.describe(iris_csv)
    assert out["correlations"] == out_dir / "correlations.csv"
    assert pd.read_csv(out["correlations"]).columns[0] == "column"

    matrix = pd.read_csv(out["correlations"], index_col="column")
    columns = list(pd.read_csv(iris_csv).columns)  # all numeric, the int target included
    assert list(matrix.index) == list(matrix.columns) == columns
    assert matrix.loc["petal length (cm)", "petal width (cm)"] > 0.9
    assert matrix.loc["sepal width (cm)", "petal length (cm)"] < -0.4
    np.testing.assert_allclose(np.diag(matrix), 1.0)
    np.testing.assert_allclose(matrix.to_numpy(), matrix.to_numpy().T)
    np.testing.assert_allclose(matrix, pd.read_csv(iris_csv).corr())


# the summary's std of a column holding inf is NaN, and numpy warns on the way there
@pytest.mark.filterwarnings("ignore:invalid value encountered in subtract:RuntimeWarning")
def test_correlations_skip_text_booleans_and_missing_values(
    mixed: pd.DataFrame, tmp_path: Path, out_dir: Path
) -> None:
    with_inf = mixed.assign(n=mixed["n"].astype(float).where(mixed.index != 4, np.inf))
    path = write_table(with_inf, tmp_path / "mixed.parquet")
    matrix = pd.read_csv(MODULE.describe(path)["correlations"], index_col="column")

    assert list(matrix.index) == list(matrix.columns) == ["x", "n", "empty"]
    both = [0, 1, 3]  # rows where x and n are both finite (x is missing in 2 and 5, n is inf in 4)
    expected = np.corrcoef(mixed.loc[both, "x"], mixed.loc[both, "n"])[0, 1]
    assert matrix.loc["x", "n"] == pytest.approx(expected)
    assert matrix.loc["n", "x"] == pytest.approx(expected)
    assert matrix.loc["empty"].isna().all() and matrix["empty"].isna().all()  # nothing to pair


def test_fewer_than_two_numeric_columns(tmp_path: Path, out_dir: Path) -> None:
    one = tmp_path / "one.csv"
    pd.DataFrame({"only": [1, 2, 3], "name": ["a", "b", "c"]}).to_csv(one, index=False)
    out = MODULE.describe(one)
    assert out["correlations"].read_text() == "column,only\nonly,1.0\n"
    assert list(Page(out["report"]).images()) == ["histogram of only"]

    words = tmp_path / "words.csv"
    pd.DataFrame({"name": ["a", "b"], "flag": [True, False]}).to_csv(words, index=False)
    out = MODULE.describe(words)
    assert out["correlations"].read_text() == "column\n"
    assert pd.read_csv(out["correlations"]).empty
    page = Page(out["report"])
    assert page.images() == {} and page.all("table") != []  # the summary is still there
    text = "".join(page.text)
    assert "No numeric columns, so no correlations." in text
    assert "No numeric columns, so no histograms." in text


def test_report_is_one_self_contained_page(iris_csv: Path, out_dir: Path) -> None:
    out = MODULE.describe(iris_csv, label_column="target")
    assert out["report"] == out_dir / "report.html"
    page = Page(out["report"])
    assert_self_contained(page)
    assert [t for t, _ in page.tags if t in ("h1", "h2")] == ["h1", "h2", "h2", "h2", "h2"]
    text = "".join(page.text)
    for heading in ("describe: iris.csv", "Summary", "Missing values",
                    "Correlations (Pearson)", "Histograms"):  # fmt: skip
        assert heading in text
    assert "150 rows \u00d7 5 columns." in text
    assert "0.963" in text  # petal length vs petal width, to 3 decimals
    assert len(page.all("table")) == 3

    # every numeric column's histogram, the very PNGs of plots/ (drawn once, not redrawn)
    images = page.images()
    columns = pd.read_csv(iris_csv).columns
    assert set(images) == {f"histogram of {name}" for name in columns}
    assert sorted(images.values()) == sorted(pngs(out["plots"]).values())
    assert all(data.startswith(PNG_SIGNATURE) for data in images.values())
    assert not [p for p in out_dir.iterdir() if p.name.endswith(".tmp")]


def test_report_shows_missing_values(mixed: pd.DataFrame, tmp_path: Path, out_dir: Path) -> None:
    page = Page(MODULE.describe(write_table(mixed, tmp_path / "mixed.parquet"))["report"])
    # one bar per column, in table order: x, n, city, flag, empty
    assert [m["value"] for m in page.all("meter")] == ["33.3", "0.0", "16.7", "0.0", "100.0"]
    assert sorted(page.images()) == ["histogram of empty", "histogram of n", "histogram of x"]


def test_report_escapes_names_and_values(tmp_path: Path, out_dir: Path) -> None:
    evil = "<script>alert('x')</script>"
    path = tmp_path / "a&b.csv"
    pd.DataFrame({evil: [1.0, 2.0, 4.0], "other": [2.0, 1.0, 0.0],
                  "text": ['<img src="https://example.org/x.png">', "<b>", "<b>"]}
                 ).to_csv(path, index=False)  # fmt: skip
    out = MODULE.describe(path)
    raw = out["report"].read_text(encoding="utf-8")
    assert "<script" not in raw and "<b>" not in raw and '<img src="https' not in raw
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in raw

    page = Page(out["report"])
    assert_self_contained(page)
    text = "".join(page.text)
    assert evil in text  # as text: summary, missing values, correlations and the caption
    assert text.count(evil) == 5
    assert "describe: a&b.csv" in text and "<b>" in text  # the most frequent text value
    assert list(page.images()) == [f"histogram of {evil}", "histogram of other"]
    assert pd.read_csv(out["correlations"], index_col="column").index[0] == evil


def test_label_column_splits_histograms(iris_csv: Path, out_dir: Path) -> None:
    out = MODULE.describe(iris_csv, label_column="target", bins=10)
    assert out["plots"] == out_dir / "plots"
    plots = pngs(out["plots"])
    assert sorted(plots) == sorted(
        ["petal_length_cm.png", "petal_width_cm.png", "sepal_length_cm.png",
         "sepal_width_cm.png", "target.png"]
    )  # fmt: skip
    assert all(data.startswith(PNG_SIGNATURE) for data in plots.values())

    plain = MODULE.describe(iris_csv, bins=10)
    split = pngs(plain["plots"])
    assert split["sepal_length_cm.png"] != plots["sepal_length_cm.png"]
    assert split["target.png"] == plots["target.png"]  # the label column itself is not split
    assert not [p for p in out_dir.iterdir() if p.name.endswith(".tmp")]


def test_label_groups_stay_few() -> None:
    few = pd.Series([0, 1, 2, 1])
    assert MODULE.label_groups(few) is few
    continuous = pd.Series(np.linspace(0, 1, 100))
    assert MODULE.label_groups(continuous).nunique() == MODULE.QUANTILE_GROUPS
    words = pd.Series([f"w{i % 30}" for i in range(300)] + ["w0"] * 10)
    for labels in (words, words.astype("category")):
        grouped = MODULE.label_groups(labels)
        assert grouped.nunique() == MODULE.MAX_GROUPS
        assert "(other)" in set(grouped) and "w0" in set(grouped)


def test_awkward_column_names_get_distinct_files(tmp_path: Path, out_dir: Path) -> None:
    path = tmp_path / "odd.csv"
    pd.DataFrame({"a/b": [1, 2], "a b": [3, 4], "...": [5, 6]}).to_csv(path, index=False)
    out = MODULE.describe(path)
    assert sorted(pngs(out["plots"])) == ["a_b-2.png", "a_b.png", "column.png"]


def test_rerun_replaces_old_plots(tmp_path: Path, iris_csv: Path, out_dir: Path) -> None:
    MODULE.describe(iris_csv, bins=5)
    small = tmp_path / "small.csv"
    pd.DataFrame({"only": [1, 2, 3]}).to_csv(small, index=False)
    out = MODULE.describe(small, bins=5)
    assert sorted(pngs(out["plots"])) == ["only.png"]
    assert len(pd.read_csv(out["summary"])) == 1
    assert out["correlations"].read_text() == "column,only\nonly,1.0\n"


def test_unsupported_suffix_is_refused(tmp_path: Path, out_dir: Path) -> None:
    path = tmp_path / "table.txt"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"unsupported suffix '\.txt'.*\.csv, \.parquet"):
        MODULE.describe(path)


def test_unreadable_and_missing_files_are_clear(tmp_path: Path, out_dir: Path) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"this is not parquet")
    with pytest.raises(ValueError, match=r"could not parse broken\.parquet as Parquet"):
        MODULE.describe(broken)
    with pytest.raises(ValueError, match="table file not found"):
        MODULE.describe(tmp_path / "nowhere.csv")
    assert not out_dir.exists()


def test_header_only_tables_are_empty(tmp_path: Path, out_dir: Path) -> None:
    header = tmp_path / "iris.csv"
    header.write_text("a,b,target\n")
    with pytest.raises(ValueError, match=r"^table iris\.csv is empty \(no rows\)$"):
        MODULE.describe(header)
    no_rows = tmp_path / "none.parquet"
    pd.DataFrame({"a": pd.Series([], dtype="float64")}).to_parquet(no_rows)
    with pytest.raises(ValueError, match=r"^table none\.parquet is empty \(no rows\)$"):
        MODULE.describe(no_rows)
    assert not out_dir.exists()


def test_zero_byte_and_blank_files_are_empty(tmp_path: Path, out_dir: Path) -> None:
    for name in ("zero.csv", "zero.parquet"):
        (tmp_path / name).touch()
        with pytest.raises(ValueError, match=rf"^table {re.escape(name)} is empty \(0 bytes\)$"):
            MODULE.describe(tmp_path / name)
    blank = tmp_path / "blank.csv"
    blank.write_text("\n\n")
    with pytest.raises(ValueError, match=r"^table blank\.csv is empty \(no columns\)$"):
        MODULE.describe(blank)
    assert not out_dir.exists()


def test_png_renamed_to_csv_is_not_a_table(tmp_path: Path, out_dir: Path) -> None:
    figure = Figure(figsize=(1, 1))
    FigureCanvasAgg(figure)
    fake = tmp_path / "picture.csv"
    figure.savefig(fake, format="png")
    assert fake.read_bytes().startswith(PNG_SIGNATURE)
    with pytest.raises(ValueError, match=r"could not parse picture\.csv as CSV: .*binary"):
        MODULE.describe(fake)
    assert not out_dir.exists()


def test_binary_garbage_without_nul_bytes_is_not_a_table(tmp_path: Path, out_dir: Path) -> None:
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(bytes(range(128, 256)) * 8)  # no NUL, and not UTF-8 either
    with pytest.raises(ValueError, match=r"could not parse garbage\.csv as CSV: .*utf-8"):
        MODULE.describe(garbage)
    assert not out_dir.exists()


def test_bad_label_column_and_bins(iris_csv: Path, out_dir: Path) -> None:
    with pytest.raises(
        ValueError,
        match=r"label column 'species' not found in iris\.csv \(columns: sepal.*target\)",
    ):
        MODULE.describe(iris_csv, label_column="species")
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        MODULE.describe(iris_csv, bins=0)
    assert not out_dir.exists()


def test_examples_return_the_declared_outputs(
    iris_csv: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = load_manifest(FOLDER)
    assert manifest.ref == "library/describe@1.1.1"
    assert manifest.spec.entrypoint == "describe.py:describe"

    monkeypatch.chdir(iris_csv.parent)  # the example names iris.csv relative to the run
    for out in run_examples(FOLDER, MODULE.describe):
        assert out["summary"].is_file() and out["plots"].is_dir()
        assert out["correlations"].is_file() and out["report"].is_file()
