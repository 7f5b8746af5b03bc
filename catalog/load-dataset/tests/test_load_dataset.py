"""Tests for the load-dataset catalog function, calling the entrypoint directly."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pytest
from sklearn import datasets

from catalog.testing import load_module, run_examples
from fnhub.core.manifest import load_manifest

FOLDER = Path(__file__).resolve().parents[1]
# name -> (rows, features, the target values)
EXPECTED = {
    "iris": (150, 4, {0, 1, 2}),
    "wine": (178, 13, {0, 1, 2}),
    "breast_cancer": (569, 30, {0, 1}),
    "digits": (1797, 64, set(range(10))),
}
MODULE = load_module(FOLDER)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_classification_datasets_as_csv(name: str, out_dir: Path) -> None:
    rows, features, targets = EXPECTED[name]
    out = MODULE.load_dataset(name=name)
    assert out["dataset"] == out_dir / f"{name}.csv"
    assert (out["n_rows"], out["n_features"]) == (rows, features)
    table = pd.read_csv(out["dataset"])
    assert table.shape == (rows, features + 1)
    assert table.columns[-1] == "target"
    assert set(table["target"]) == targets
    assert not any(p.suffix == ".tmp" for p in out_dir.iterdir())


def test_diabetes_has_a_continuous_target(out_dir: Path) -> None:
    out = MODULE.load_dataset(name="diabetes")
    table = pd.read_csv(out["dataset"])
    assert (out["n_rows"], out["n_features"]) == (442, 10)
    assert list(table.columns[:3]) == ["age", "sex", "bmi"]
    assert table["target"].between(25, 346).all()
    assert table["target"].nunique() > 100


def test_defaults_give_iris_csv_with_sklearn_columns(iris: pd.DataFrame, out_dir: Path) -> None:
    out = MODULE.load_dataset()
    table = pd.read_csv(out["dataset"])
    assert list(table.columns) == list(iris.columns)
    pd.testing.assert_frame_equal(table, iris, check_dtype=False)


def test_parquet_round_trip_keeps_values_and_dtypes(out_dir: Path) -> None:
    out = MODULE.load_dataset(name="wine", format="parquet")
    assert out["dataset"] == out_dir / "wine.parquet"
    assert out["dataset"].read_bytes()[:4] == b"PAR1"
    table = pd.read_parquet(out["dataset"])
    pd.testing.assert_frame_equal(table, datasets.load_wine(as_frame=True).frame)


def test_writes_to_a_fresh_folder_without_fnhub_output_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.delenv("FNHUB_OUTPUT_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the fresh folder goes there
    out = MODULE.load_dataset(name="iris")
    assert out["dataset"].is_file()
    assert out["dataset"].parent.name.startswith("load-dataset-")
    assert out["dataset"].parent.parent == tmp_path


def test_unknown_dataset_lists_the_choices(out_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'.*iris, wine, breast_cancer"):
        MODULE.load_dataset(name="mnist")
    assert not out_dir.exists()


def test_unknown_format_lists_the_choices(out_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown format 'xlsx'.*csv, parquet"):
        MODULE.load_dataset(name="iris", format="xlsx")


def test_examples_return_the_declared_outputs(out_dir: Path) -> None:
    manifest = load_manifest(FOLDER)
    assert manifest.ref == "library/load-dataset@1.0.1"
    assert manifest.spec.entrypoint == "load_dataset.py:load_dataset"

    for out in run_examples(FOLDER, MODULE.load_dataset):
        assert out["dataset"].is_file()
