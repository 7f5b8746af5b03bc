"""The pipeline tests' function folders, written fresh for every test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import write_function
from tests.pipeline.exports import record_image
from tests.pipeline.functions import ADD, BOOM, NAP, NUMBERS, make_function


@pytest.fixture
def fns(tmp_path: Path) -> dict[str, Path]:
    """numbers(n, start, sleep) -> table, count; scale(table, factor) -> scaled, total;
    nap(seconds, tag) -> tag; add(a, b) -> sum; boom(table) fails."""
    root = tmp_path / "functions"
    return {
        "numbers": make_function(root / "numbers", "numbers", NUMBERS, inputs=[
            {"name": "n", "type": "int"}, {"name": "start", "type": "int", "default": 1},
            {"name": "sleep", "type": "float", "default": 0.0}],
            outputs=[{"name": "table", "type": "dataset"}, {"name": "count", "type": "int"}]),
        "scale": write_function(root / "scale", name="scale", namespace="tests",
                                version="1.0.0"),
        "nap": make_function(root / "nap", "nap", NAP, inputs=[
            {"name": "seconds", "type": "float"}, {"name": "tag", "type": "str"}],
            outputs=[{"name": "tag", "type": "str"}]),
        "add": make_function(root / "add", "add", ADD, inputs=[
            {"name": "a", "type": "float"}, {"name": "b", "type": "float"}],
            outputs=[{"name": "sum", "type": "float"}]),
        "boom": make_function(root / "boom", "boom", BOOM, inputs=[
            {"name": "table", "type": "dataset"}], outputs=[{"name": "never", "type": "int"}]),
    }


@pytest.fixture
def imaged(fns: dict[str, Path]) -> dict[str, Path]:
    """The small functions with images and resources recorded, as `hub publish --image` would."""
    record_image(fns["numbers"], cpu="500m", memory="1Gi")
    record_image(fns["scale"], cpu="2", memory="4Gi", gpu=1)
    record_image(fns["add"])
    record_image(fns["nap"])
    return fns
