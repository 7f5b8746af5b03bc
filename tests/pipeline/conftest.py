"""The pipeline tests' function folders, written fresh for every test; and, for the tests that
run the five-step catalog pipeline (`tests.pipeline.catalog`), a seeded hub and one user per
module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import CLI, HubProcess, start_hub, write_function
from tests.pipeline.catalog import PIPELINE
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


@pytest.fixture(scope="module")
def catalog_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    process = start_hub(tmp_path_factory.mktemp("catalog-hub") / "data", seed=True)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def catalog_user_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One user for the module, so later tests find the step cache the first one filled."""
    return tmp_path_factory.mktemp("catalog-user")


@pytest.fixture
def catalog_user(catalog_hub: HubProcess, catalog_user_root: Path,
                 monkeypatch: pytest.MonkeyPatch) -> CLI:
    """The module's user, also for the SDK in this process (its FNHUB_* environment)."""
    cli = CLI(catalog_user_root, catalog_hub.url)
    for key, value in cli.env.items():
        if key.startswith("FNHUB_"):
            monkeypatch.setenv(key, value)
    return cli


@pytest.fixture
def catalog_project(catalog_user: CLI) -> Path:
    """A folder holding the five-step `pipeline.yaml`."""
    folder = catalog_user.root / "project"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pipeline.yaml").write_text(PIPELINE)
    return folder
