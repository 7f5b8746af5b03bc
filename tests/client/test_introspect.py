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
    manifest = manifest_from_code(tmp_path, "clean.py:clean", "clean", "alice",
                                  cwd=tmp_path).manifest
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
        manifest_from_code(tmp_path, target, "clean", "alice", cwd=tmp_path)


def test_invalid_name_is_a_manifest_error(tmp_path: Path) -> None:
    (tmp_path / "clean.py").write_text(SOURCE)
    with pytest.raises(ManifestError, match=r"metadata\.name"):
        manifest_from_code(tmp_path, "clean.py:clean", "Clean Data", "alice", cwd=tmp_path)


def test_the_path_is_taken_as_given_and_must_be_inside_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "my_fn"
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "clean.py").write_text(SOURCE)
    for target in ("my_fn/src/clean.py:clean", f"{folder}/src/clean.py:clean"):
        derived = manifest_from_code(folder, target, "clean", "alice", cwd=tmp_path)
        assert derived.manifest.spec.entrypoint == "src/clean.py:clean"
    with pytest.raises(InvalidInput, match="does not exist") as info:  # relative to the folder
        manifest_from_code(folder, "src/clean.py:clean", "clean", "alice", cwd=tmp_path)
    assert info.value.hint and "my_fn/src/clean.py" in info.value.hint
    (tmp_path / "outside.py").write_text(SOURCE)
    with pytest.raises(InvalidInput, match="not inside the function folder"):
        manifest_from_code(folder, "outside.py:clean", "clean", "alice", cwd=tmp_path)


@pytest.mark.parametrize(("code", "message"), [
    ("def f(x: int) -> dict:\n    pass\n", "cannot tell the outputs of f"),
    ('def f(x: int):\n    """Do.\n\n    Returns:\n        y: the result\n    """\n',
     "cannot tell the type of output 'y'"),
    ('def f(x: int):\n    """Do.\n\n    Returns:\n        y (Widget): the result\n    """\n',
     "cannot tell the type of output 'y' from 'Widget'"),
    ("def f(x) -> int:\n    pass\n", "cannot tell the type of input 'x'"),
    ("import typing\nclass Out(typing.TypedDict):\n    y: object\n"
     "def f(x: int) -> Out:\n    pass\n", "cannot tell the type of output 'y' from 'object'"),
])
def test_an_output_or_input_without_a_type_is_an_error(tmp_path: Path, code: str,
                                                        message: str) -> None:
    """Never a silent `str`: the first run would fail on it."""
    (tmp_path / "f.py").write_text(code)
    with pytest.raises(InvalidInput, match=message) as info:
        manifest_from_code(tmp_path, "f.py:f", "f", "alice", cwd=tmp_path)
    assert info.value.hint


def test_typed_dict_and_frames(tmp_path: Path) -> None:
    (tmp_path / "f.py").write_text(
        "from pathlib import Path\nfrom typing import TypedDict\nimport pandas as pd\n"
        "class Out(TypedDict):\n    kept: pd.DataFrame\n    n: int\n    report: Path\n"
        "def f(table: pd.DataFrame, limit: float = 0.5, tags: list[str] | None = None) -> Out:"
        "\n    pass\n")
    derived = manifest_from_code(tmp_path, "f.py:f", "f", "alice", cwd=tmp_path)
    spec = derived.manifest.spec
    assert [(p.name, p.type) for p in spec.inputs] == [
        ("table", "dataset"), ("limit", "float"), ("tags", "list")]
    assert [(p.name, p.type) for p in spec.outputs] == [
        ("kept", "dataset"), ("n", "int"), ("report", "file")]
    assert spec.entrypoint == "fnhub_frames.py:main" and list(derived.files) == ["fnhub_frames.py"]
