"""Tests for the split-dataset catalog function, calling the entrypoint directly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from catalog.testing import load_module, run_examples
from fnhub.core.manifest import load_manifest

FOLDER = Path(__file__).resolve().parents[1]
MODULE = load_module(FOLDER)


@pytest.fixture
def imbalanced_csv(tmp_path: Path) -> Path:
    """90 rows of class 0 and 10 of class 1, with a row id to check rows are not lost."""
    path = tmp_path / "imbalanced.csv"
    pd.DataFrame(
        {"id": range(100), "x": [i * 0.5 for i in range(100)], "target": [0] * 90 + [1] * 10}
    ).to_csv(path, index=False)
    return path


def _read(out: dict[str, Any], name: str) -> pd.DataFrame:
    return pd.read_csv(out[name])


def test_default_split_is_stratified_80_20(iris_csv: Path, out_dir: Path) -> None:
    out = MODULE.split_dataset(iris_csv)
    assert set(out) == {"train", "test", "validation", "sizes"}
    assert out["sizes"] == {"train": 120, "test": 30, "validation": 0}
    train, test, validation = (_read(out, name) for name in ("train", "test", "validation"))
    assert (len(train), len(test)) == (120, 30)
    assert train["target"].value_counts().to_dict() == {0: 40, 1: 40, 2: 40}
    assert test["target"].value_counts().to_dict() == {0: 10, 1: 10, 2: 10}
    iris = pd.read_csv(iris_csv)
    assert list(train.columns) == list(test.columns) == list(iris.columns)
    # Empty but headed: the columns are there, no rows.
    assert list(validation.columns) == list(iris.columns) and validation.empty
    assert out["validation"].read_text().count("\n") == 1
    assert not [p for p in out_dir.iterdir() if p.name.endswith(".tmp")]


def test_three_way_split_keeps_every_row_once(imbalanced_csv: Path, out_dir: Path) -> None:
    out = MODULE.split_dataset(imbalanced_csv, test_size=0.2, validation_size=0.2)
    assert out["sizes"] == {"train": 60, "test": 20, "validation": 20}
    parts = {name: _read(out, name) for name in ("train", "test", "validation")}
    ids = pd.concat([part["id"] for part in parts.values()])
    assert sorted(ids) == list(range(100))
    for name, part in parts.items():  # the rare class keeps its 10% share in every set
        assert (part["target"] == 1).mean() == pytest.approx(0.1), name


def test_sizes_round_up_without_float_noise(imbalanced_csv: Path, out_dir: Path) -> None:
    out = MODULE.split_dataset(imbalanced_csv, test_size=0.07, stratify=False)
    assert out["sizes"]["test"] == 7  # 0.07 * 100 is 7.000000000000001 in floats
    out = MODULE.split_dataset(imbalanced_csv, test_size=0.125, validation_size=0.115)
    assert out["sizes"] == {"train": 75, "test": 13, "validation": 12}


def test_seed_makes_the_split_repeatable(iris_csv: Path, tmp_path: Path, monkeypatch) -> None:
    runs = []
    for run, seed in enumerate([5, 5, 6]):
        monkeypatch.setenv("FNHUB_OUTPUT_DIR", str(tmp_path / f"run{run}"))
        runs.append(MODULE.split_dataset(iris_csv, seed=seed)["test"].read_bytes())
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_random_split_needs_no_label(tmp_path: Path, out_dir: Path) -> None:
    path = tmp_path / "values.parquet"
    pd.DataFrame({"y": [float(i) for i in range(10)]}).to_parquet(path)
    with pytest.raises(ValueError, match=r"label_column 'target' is not a column.*columns: y"):
        MODULE.split_dataset(path)
    out = MODULE.split_dataset(path, stratify=False, test_size=0.3)
    assert out["sizes"] == {"train": 7, "test": 3, "validation": 0}
    assert sorted(_read(out, "train")["y"].tolist() + _read(out, "test")["y"].tolist()) == [
        float(i) for i in range(10)
    ]


def test_a_continuous_label_cannot_be_stratified(diabetes_csv: Path, out_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"class .* has only 1 row\(s\).*stratify=false"):
        MODULE.split_dataset(diabetes_csv)
    assert MODULE.split_dataset(diabetes_csv, stratify=False)["sizes"]["test"] == 89


def test_too_few_rows_per_class_name_the_class(tmp_path: Path, out_dir: Path) -> None:
    path = tmp_path / "small.csv"
    pd.DataFrame({"x": range(12), "target": ["a"] * 5 + ["b"] * 5 + ["c"] * 2}).to_csv(
        path, index=False
    )
    assert MODULE.split_dataset(path, test_size=0.25)["sizes"]["test"] == 3
    with pytest.raises(ValueError, match=r"class 'c' has only 2 row\(s\).*at least 3"):
        MODULE.split_dataset(path, test_size=0.25, validation_size=0.25)
    with pytest.raises(ValueError, match=r"cannot stratify the test split by 'target'.*test_size"):
        MODULE.split_dataset(path, test_size=0.1)  # 2 test rows for 3 classes


def test_missing_labels_are_refused_when_stratifying(tmp_path: Path, out_dir: Path) -> None:
    path = tmp_path / "gaps.csv"
    pd.DataFrame({"x": range(6), "target": [0, 1, None, 0, 1, 0]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"1 rows have no label.*clean-data"):
        MODULE.split_dataset(path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"test_size": 0}, r"test_size must be a fraction of the rows \(0 < test_size < 1\)"),
        ({"test_size": 1.0}, r"test_size must be a fraction"),
        ({"test_size": 30}, r"test_size must be a fraction.*got 30"),
        ({"test_size": "0.2"}, r"test_size must be a fraction.*got '0.2'"),
        ({"test_size": float("nan")}, r"test_size must be a fraction"),
        ({"validation_size": -0.1}, r"validation_size must be a fraction.*0 <= validation_size"),
        ({"test_size": 0.5, "validation_size": 0.5}, r"test_size \+ validation_size must be below"),
        ({"stratify": "no"}, r"stratify must be true or false, got 'no'"),
        ({"seed": 1.5}, r"seed must be an integer between 0 and 4294967295, got 1.5"),
    ],
)
def test_bad_parameters_are_refused_clearly(
    kwargs: dict[str, Any], message: str, iris_csv: Path, out_dir: Path
) -> None:
    with pytest.raises(ValueError, match=message):
        MODULE.split_dataset(iris_csv, **kwargs)
    assert not out_dir.exists()


def test_tables_too_small_or_unreadable(tmp_path: Path, out_dir: Path) -> None:
    one = tmp_path / "one.csv"
    pd.DataFrame({"x": [1], "target": [0]}).to_csv(one, index=False)
    with pytest.raises(ValueError, match=r"one\.csv has 1 rows: 1 for test and 0 for validation"):
        MODULE.split_dataset(one, stratify=False)
    with pytest.raises(ValueError, match=r"unsupported suffix '\.json'"):
        MODULE.split_dataset(tmp_path / "t.json")
    with pytest.raises(ValueError, match="table file not found"):
        MODULE.split_dataset(tmp_path / "nowhere.parquet")
    empty = tmp_path / "empty.csv"
    empty.write_text("x,target\n")
    with pytest.raises(ValueError, match=r"table empty\.csv has no rows"):
        MODULE.split_dataset(empty)


def test_examples_return_the_declared_outputs(
    iris_csv: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = load_manifest(FOLDER)
    assert manifest.ref == "library/split-dataset@1.0.1"
    assert manifest.spec.entrypoint == "split_dataset.py:split_dataset"

    monkeypatch.chdir(iris_csv.parent)  # the examples name iris.csv relative to the run
    for out in run_examples(FOLDER, MODULE.split_dataset):
        assert sum(out["sizes"].values()) == 150
        for name, size in out["sizes"].items():
            assert len(pd.read_csv(out[name])) == size
