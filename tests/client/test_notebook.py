"""The SDK in a notebook: DataFrames in and out, a signature for help() and autocompletion, an
HTML card, and `doc()` shown once (issue #14, acceptance 4), on real catalog functions."""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

import fnhub
from fnhub.core.errors import InvalidInput, MissingRequirements
from tests.helpers import write_function

ROOT = Path(__file__).resolve().parents[2]
CLEAN_DATA, DESCRIBE = ROOT / "catalog" / "clean-data", ROOT / "catalog" / "describe"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FNHUB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def raw() -> pd.DataFrame:
    """A row repeated, a missing value, a constant column and numbers read as text."""
    return pd.DataFrame({
        "age": [30.0, None, 50.0, 30.0], "income": ["1", "2", "3", "1"],
        "city": ["a", "a", "a", "a"], "target": [0, 1, 1, 0],
    })


def test_signature_lists_the_inputs_with_defaults_and_types() -> None:
    fn = fnhub.import_function(str(DESCRIBE))
    params = inspect.signature(fn).parameters
    assert list(params) == ["table", "label_column", "bins", "as_frames"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    assert params["table"].default is inspect.Parameter.empty
    assert "pandas.DataFrame" in str(params["table"].annotation)
    assert (params["bins"].default, params["bins"].annotation) == (20, int)
    assert params["label_column"].default is None
    assert params["label_column"].annotation == str | None
    # help() shows each input and output with its description
    assert "bins (int, default 20): Number of histogram bins" in (fn.__doc__ or "")
    assert "n_rows (int): Number of rows" in (fn.__doc__ or "")


def test_signature_binds_like_a_call() -> None:
    """A missing required input, or an unknown one, fails to bind before anything runs."""
    sig = inspect.signature(fnhub.import_function(str(CLEAN_DATA)))
    assert sig.bind(table="t.csv", drop_constant=False).arguments["drop_constant"] is False
    with pytest.raises(TypeError, match="table"):
        sig.bind(drop_constant=False)
    with pytest.raises(TypeError, match="colour"):
        sig.bind(table="t.csv", colour=1)


def test_dataframe_in_dataframe_out(home: Path, raw: pd.DataFrame) -> None:
    clean = fnhub.import_function(str(CLEAN_DATA))
    out = clean(table=raw, as_frames=True)
    cleaned = out["cleaned"]
    assert isinstance(cleaned, pd.DataFrame)
    assert len(cleaned) == out["n_rows"] == 3  # the repeated row is gone
    assert "city" not in cleaned.columns  # constant
    assert cleaned["age"].isna().sum() == 0 and cleaned["income"].dtype.kind in "if"
    assert isinstance(out["report"], Path)  # metrics stay a path: only datasets become frames
    # the frame went in as Parquet, in the run folder, and the run record names that file
    (run_dir,) = (home / "runs").iterdir()
    assert pd.read_parquet(run_dir / "inputs" / "table.parquet").equals(raw)
    recorded = json.loads((run_dir / "run.json").read_text())["inputs"]["table"]
    assert recorded == str(run_dir / "inputs" / "table.parquet")


def test_frames_chain_between_functions(home: Path, raw: pd.DataFrame) -> None:
    cleaned = fnhub.import_function(str(CLEAN_DATA))(table=raw, as_frames=True)["cleaned"]
    described = fnhub.import_function(str(DESCRIBE))(table=cleaned, bins=3, as_frames=True)
    summary = described["summary"]
    assert isinstance(summary, pd.DataFrame) and described["n_columns"] == 3
    assert list(summary["column"]) == list(cleaned.columns)


def test_without_as_frames_outputs_stay_paths(home: Path, raw: pd.DataFrame) -> None:
    out = fnhub.import_function(str(CLEAN_DATA))(table=raw)
    assert isinstance(out["cleaned"], Path) and out["cleaned"].name == "cleaned.csv"


@pytest.mark.slow
def test_dataframe_through_a_venv(home: Path, raw: pd.DataFrame) -> None:
    """The Parquet file, not the frame, crosses into the function's own venv."""
    result = fnhub.import_function(str(CLEAN_DATA)).run(env="venv", table=raw, as_frames=True)
    assert isinstance(result.outputs["cleaned"], pd.DataFrame)
    assert len(result.outputs["cleaned"]) == 3
    assert json.loads((result.run_dir / "run.json").read_text())["env"] == "venv"


def test_a_frame_needs_pyarrow_and_says_so(home: Path, raw: pd.DataFrame,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` now fails
    with pytest.raises(MissingRequirements, match="needs pyarrow") as info:
        fnhub.import_function(str(CLEAN_DATA))(table=raw)
    assert info.value.hint == "pip install pyarrow"
    assert not (home / "runs").exists()  # nothing half-made


def test_a_frame_only_fits_a_dataset_input(home: Path, raw: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="input 'strategies' is a dict"):
        fnhub.import_function(str(CLEAN_DATA))(table=raw, strategies=raw)


def test_an_unreadable_dataset_output_is_named(home: Path, tmp_path: Path) -> None:
    folder = write_function(tmp_path / "scale", name="scale", namespace="alice",
                            version="1.0.0")
    code = (folder / "scale.py").read_text()
    (folder / "scale.py").write_text(code.replace('"scaled.csv"', '"scaled.xlsx"'))
    data = tmp_path / "data.csv"
    data.write_text("value\n1\n")
    with pytest.raises(InvalidInput, match=r"output 'scaled' \(scaled.xlsx\) is not a table"):
        fnhub.import_function(str(folder))(table=data, as_frames=True)


def test_doc_returns_the_table_without_printing(capsys: pytest.CaptureFixture[str]) -> None:
    doc = fnhub.import_function(str(DESCRIBE)).doc()
    assert capsys.readouterr().out == ""
    assert repr(doc) == str(doc)  # a REPL shows the table, not a quoted string
    for word in ("table", "dataset", "bins", "20", "summary", "n_rows"):
        assert word in doc
    assert "<table>" in doc._repr_html_() and "Number of histogram bins" in doc._repr_html_()


def test_html_card_escapes_the_manifest(tmp_path: Path) -> None:
    folder = write_function(tmp_path / "scale", name="scale", namespace="alice",
                            version="1.0.0")
    manifest = (folder / "function.yaml").read_text()
    (folder / "function.yaml").write_text(manifest.replace(
        "description: Scale the value column of a CSV table",
        "description: \"<script>alert('card')</script>\"").replace(
        "description: CSV with a value column", "description: \"<img src=x onerror=alert(1)>\""))
    fn = fnhub.import_function(str(folder))
    card = fn._repr_html_()
    assert "alice/scale" in card and "1.0.0" in card
    assert "<script>" not in card and "&lt;script&gt;" in card
    assert "<img" not in card and "<img" not in fn.doc()._repr_html_()
