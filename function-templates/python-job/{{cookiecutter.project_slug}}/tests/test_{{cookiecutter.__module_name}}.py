"""Tests for {{ cookiecutter.name }}, calling it through fnhub as `hub run` and pipelines do."""

from __future__ import annotations

import importlib.util
import inspect
import json
from pathlib import Path

import fnhub
import pandas as pd
import pytest
from fnhub.core.errors import RunError

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fn(monkeypatch: pytest.MonkeyPatch) -> fnhub.Function:
    """This folder's function, loaded the way its users load it: `import_function("./")`."""
    monkeypatch.chdir(PROJECT)
    return fnhub.import_function("./")


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "table.csv"
    path.write_text("a,b,name\n1,10,x\n2,20,y\n3,60,z\n")
    return path


def test_minmax_scales_every_numeric_column(fn: fnhub.Function, table: Path,
                                            tmp_path: Path) -> None:
    result = fn.run(out_dir=tmp_path / "run", table=table, method="minmax")
    assert result.outputs["n_rows"] == 3
    scaled = pd.read_csv(result.outputs["scaled"])
    assert scaled["a"].tolist() == [0.0, 0.5, 1.0]
    assert scaled["b"].tolist() == [0.0, 0.2, 1.0]
    assert scaled["name"].tolist() == ["x", "y", "z"]
    assert json.loads(result.outputs["stats"].read_text()) == {
        "method": "minmax",
        "columns": {"a": {"center": 1.0, "scale": 2.0}, "b": {"center": 10.0, "scale": 50.0}},
    }


def test_zscore_of_chosen_columns(fn: fnhub.Function, table: Path, tmp_path: Path) -> None:
    result = fn.run(out_dir=tmp_path / "run", table=table, columns=["b"])
    scaled = pd.read_csv(result.outputs["scaled"])
    assert scaled["b"].mean() == pytest.approx(0.0)
    assert scaled["b"].std(ddof=0) == pytest.approx(1.0)
    assert scaled["a"].tolist() == [1, 2, 3]  # not chosen, unchanged


def test_bad_inputs_name_the_problem(fn: fnhub.Function, table: Path, tmp_path: Path) -> None:
    with pytest.raises(RunError, match="unknown method 'median'"):
        fn.run(out_dir=tmp_path / "run1", table=table, method="median")
    with pytest.raises(RunError, match=r"not in table\.csv: c "):
        fn.run(out_dir=tmp_path / "run2", table=table, columns=["c"])
    with pytest.raises(RunError, match="column 'name' is not numeric"):
        fn.run(out_dir=tmp_path / "run3", table=table, columns=["name"])
{%- if cookiecutter.sample_data %}


def test_the_example_in_function_yaml(fn: fnhub.Function, tmp_path: Path) -> None:
    example = fn.manifest.spec.examples[0]
    result = fn.run(out_dir=tmp_path / "run", **example.inputs)  # paths are relative to here
    assert result.outputs["n_rows"] == 4
    assert result.outputs["scaled"].read_text() == (
        "height_cm,weight_kg,label\n0.0,0.5,a\n0.5,0.0,b\n1.0,1.0,c\n0.75,0.75,a\n"
    )
{%- endif %}


def test_function_yaml_matches_the_code(fn: fnhub.Function) -> None:
    spec = fn.manifest.spec
    target, _, attr = spec.entrypoint.partition(":")
    loaded = importlib.util.spec_from_file_location("entrypoint", PROJECT / target)
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    params = inspect.signature(getattr(module, attr)).parameters
    assert [p.name for p in spec.inputs] == list(params)
    for port in spec.inputs:
        default = params[port.name].default
        assert port.required == (default is inspect.Parameter.empty)
        if not port.required:
            assert port.default == default
    lines = (PROJECT / "requirements.txt").read_text().splitlines()
    assert [line for line in lines if line and not line.startswith("#")] == spec.requirements
