"""Fixtures every catalog test may ask for: an output folder and scikit-learn's bundled tables.

The plain helpers the tests import by name are in `catalog/testing.py`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn import datasets

from catalog.testing import write_table


@pytest.fixture
def out_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the function writes (FNHUB_OUTPUT_DIR); not created, so tests can check that bad
    input writes nothing at all."""
    out = tmp_path / "out"
    monkeypatch.setenv("FNHUB_OUTPUT_DIR", str(out))
    return out


@pytest.fixture
def iris() -> pd.DataFrame:
    return datasets.load_iris(as_frame=True).frame


@pytest.fixture
def iris_csv(iris: pd.DataFrame, tmp_path: Path) -> Path:
    return write_table(iris, tmp_path / "iris.csv")


@pytest.fixture
def diabetes() -> pd.DataFrame:
    return datasets.load_diabetes(as_frame=True).frame


@pytest.fixture
def diabetes_csv(diabetes: pd.DataFrame, tmp_path: Path) -> Path:
    return write_table(diabetes, tmp_path / "diabetes.csv")
