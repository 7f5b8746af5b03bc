"""`hub init --from-code`: inputs and outputs from type hints and docstrings, without importing."""

from __future__ import annotations

from pathlib import Path

import pytest

from fnhub.core.errors import InvalidInput, ManifestError
from fnhub.introspect import manifest_from_code

SOURCE = '''
from pathlib import Path
raise SystemExit("importing this module must never happen")

def clean(table: Path, strategy: str = "median", threshold: float = 0.5,
          columns: list[str] | None = None, model_path: Path | None = None) -> dict:
    """Impute missing values.

    Args:
        table: the input CSV
        strategy: how to impute
    Returns:
        cleaned (dataset): the cleaned table
        n_changed (int): cells changed
    """
'''


def test_derives_ports_from_hints_and_docstring(tmp_path: Path) -> None:
    (tmp_path / "clean.py").write_text(SOURCE)
    manifest = manifest_from_code(tmp_path, "clean.py:clean", "clean", "alice")
    inputs = {p.name: p for p in manifest.spec.inputs}
    assert {n: p.type for n, p in inputs.items()} == {
        "table": "dataset", "strategy": "str", "threshold": "float", "columns": "list",
        "model_path": "model"}
    assert inputs["table"].required and not inputs["strategy"].required
    assert inputs["strategy"].default == "median" and inputs["strategy"].description == (
        "how to impute")
    assert [(p.name, p.type) for p in manifest.spec.outputs] == [
        ("cleaned", "dataset"), ("n_changed", "int")]
    assert manifest.metadata.description == "Impute missing values."


@pytest.mark.parametrize(("target", "message"), [
    ("clean.py", "expected FILE.py:CALLABLE"),
    ("missing.py:clean", "does not exist"),
    ("clean.py:nope", "no top-level function 'nope'"),
])
def test_bad_targets(tmp_path: Path, target: str, message: str) -> None:
    (tmp_path / "clean.py").write_text(SOURCE)
    with pytest.raises(InvalidInput, match=message):
        manifest_from_code(tmp_path, target, "clean", "alice")


def test_invalid_name_is_a_manifest_error(tmp_path: Path) -> None:
    (tmp_path / "clean.py").write_text(SOURCE)
    with pytest.raises(ManifestError, match=r"metadata\.name"):
        manifest_from_code(tmp_path, "clean.py:clean", "Clean Data", "alice")
