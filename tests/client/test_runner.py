"""Running function folders in-process and in a venv, through `fnhub.import_function`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import fnhub
from fnhub.core.errors import InvalidInput, MissingRequirements, RunError
from tests.helpers import write_function


@pytest.fixture
def scale(tmp_path: Path) -> Path:
    return write_function(tmp_path / "scale", name="scale", namespace="alice", version="1.0.0")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    path.write_text("value\n1\n2\n")
    return path


def test_local_folder_runs_in_process(scale: Path, data: Path, tmp_path: Path) -> None:
    fn = fnhub.import_function(str(scale))
    result = fn.run(table=data, factor="2.5", out_dir=tmp_path / "run")
    assert result.outputs["total"] == 7.5
    assert result.outputs["scaled"].read_text().splitlines() == ["value", "2.5", "5.0"]
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "succeeded" and record["env"] == "current"


def test_doc_lists_inputs_and_outputs(scale: Path) -> None:
    text = fnhub.import_function(str(scale)).doc()
    for word in ("table", "dataset", "factor", "1.0", "scaled", "total"):
        assert word in text


def test_venv_env_runs_the_same_code(scale: Path, data: Path) -> None:
    result = fnhub.import_function(str(scale)).run(env="venv", table=data, factor=3)
    assert result.outputs["total"] == 9.0
    assert result.outputs["scaled"].is_relative_to(result.run_dir)


@pytest.mark.parametrize(("inputs", "message"), [
    ({"factor": 2}, "missing required input 'table'"),
    ({"table": "/nonexistent.csv"}, "does not exist"),
    ({"table": "DATA", "colour": 1}, "has no input 'colour'"),
    ({"table": "DATA", "factor": "two"}, "expects float"),
])
def test_bad_inputs_are_named(scale: Path, data: Path, inputs: dict, message: str) -> None:
    inputs = {k: (data if v == "DATA" else v) for k, v in inputs.items()}
    with pytest.raises(InvalidInput, match=message):
        fnhub.import_function(str(scale)).run(**inputs)


def test_missing_requirements_are_listed(scale: Path, data: Path) -> None:
    manifest = (scale / "function.yaml").read_text()
    (scale / "function.yaml").write_text(manifest.replace(
        "  kind: job\n", "  kind: job\n  requirements: [\"surely-not-installed-pkg>=1\"]\n"))
    with pytest.raises(MissingRequirements,
                       match=r"surely-not-installed-pkg>=1 \(not installed\)"):
        fnhub.import_function(str(scale))(table=data)


def test_function_failure_points_at_its_log(scale: Path, data: Path, tmp_path: Path) -> None:
    data.write_text("value\nnot-a-number\n")
    with pytest.raises(RunError, match="ValueError") as info:
        fnhub.import_function(str(scale)).run(table=data, out_dir=tmp_path / "run")
    assert info.value.hint and "log.txt" in info.value.hint
    assert "Traceback" in (tmp_path / "run" / "log.txt").read_text()
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "failed"


def test_outputs_must_match_the_manifest(scale: Path, data: Path) -> None:
    code = (scale / "scale.py").read_text()
    (scale / "scale.py").write_text(code.replace('"total": total}', '"totl": total}'))
    with pytest.raises(RunError, match="missing \\['total'\\], unknown \\['totl'\\]"):
        fnhub.import_function(str(scale))(table=data)


def test_context_gives_the_output_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FNHUB_OUTPUT_DIR", str(tmp_path / "out"))
    assert fnhub.context().output_dir == tmp_path / "out"
    assert (tmp_path / "out").is_dir()


def test_venv_holds_the_declared_requirements_and_is_reused(tmp_path: Path) -> None:
    folder = tmp_path / "which"
    folder.mkdir()
    (folder / "function.yaml").write_text("""\
apiVersion: fnhub/v1
kind: Function
metadata: {name: which, namespace: alice, version: 1.0.0}
spec:
  entrypoint: which.py:which
  requirements: ["packaging>=20"]
  outputs: [{name: python, type: str}, {name: packaging, type: str}]
""")
    (folder / "which.py").write_text(
        "import sys\nimport packaging\n\n"
        "def which():\n"
        "    return {'python': sys.executable, 'packaging': packaging.__file__}\n")
    fn = fnhub.import_function(str(folder))
    first = fn.run(env="venv").outputs
    venv_dir = Path(first["python"]).parent.parent
    assert venv_dir.parent.name == "venvs" and venv_dir.name != Path(sys.executable).parent.name
    assert first["packaging"].startswith(str(venv_dir))
    marker = venv_dir / ".fnhub-complete"
    built = marker.stat().st_mtime_ns
    assert fn.run(env="venv").outputs == first
    assert marker.stat().st_mtime_ns == built


def test_an_env_object_is_what_a_name_means(scale: Path, data: Path, tmp_path: Path) -> None:
    """`env=` takes an Env as well as a name; a VenvEnv keeps its venvs where it says."""
    result = fnhub.import_function(str(scale)).run(env=fnhub.VenvEnv(tmp_path / "my-venvs"),
                                                   table=data, factor=2)
    assert result.outputs["total"] == 6.0
    assert [p.name for p in (tmp_path / "my-venvs").iterdir() if p.is_dir()]
    assert json.loads((result.run_dir / "run.json").read_text())["env"] == "venv"


@pytest.mark.slow
def test_only_container_runs_load_the_docker_sdk(scale: Path, data: Path,
                                                 tmp_path: Path) -> None:
    """The docker SDK loads with `fnhub.container`, which only a container run imports."""
    code = (
        "import sys, fnhub\n"
        f"fn = fnhub.import_function({str(scale)!r})\n"
        f"fn.run(table={str(data)!r})\n"
        f"fn.run(env='venv', table={str(data)!r})\n"
        "before = 'docker' in sys.modules\n"
        "try:\n"
        "    fn.run(env='container')\n"
        "except fnhub.core.errors.InvalidInput as exc:\n"
        "    print(exc.message)\n"
        "fnhub.ContainerEnv\n"
        "print(before, 'docker' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["scale records no published image to run in a container",
                                        "False True"]
