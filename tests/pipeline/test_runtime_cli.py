"""`python -m fnhub.runtime` with flags, as a KFP or Argo container step calls it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fnhub.runtime import artifact_input
from tests.pipeline.functions import make_function


def runtime(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fnhub.runtime", *args], capture_output=True,
                          text=True, cwd=cwd, check=False, timeout=60)


def test_flags_call_the_function_and_write_outputs_where_asked(fns: dict[str, Path],
                                                              tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("value\n1\n2\n")
    out = tmp_path / "kfp-outputs"
    proc = runtime("--function-dir", str(fns["scale"]), "--entrypoint", "scale.py:scale",
                   "--artifact", f"table={data}", "--param", "factor=2.5",
                   "--output", f"scaled:dataset={out / 'scaled' / 'data'}",
                   "--output", f"total:float={out / 'total'}",
                   "--output-dir", str(tmp_path / "work"), "--result", str(tmp_path / "r.json"),
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (out / "scaled" / "data").read_text().splitlines() == ["value", "2.5", "5.0"]
    assert (out / "total").read_text() == "7.5"
    result = json.loads((tmp_path / "r.json").read_text())
    assert result == {"ok": True, "outputs": {"scaled": {"path": str(out / "scaled" / "data")},
                                              "total": {"value": 7.5}}}
    assert (tmp_path / "work" / "scaled.csv").is_file()  # fnhub.context().output_dir


def test_text_params_and_string_outputs(fns: dict[str, Path], tmp_path: Path) -> None:
    proc = runtime("--function-dir", str(fns["nap"]), "--entrypoint", "main.py:main",
                   "--param", "seconds=0", "--text", "tag=true", "--output", "tag:str=tag.txt",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "tag.txt").read_text() == "TRUE"  # --text keeps "true" a string


def test_a_failing_function_exits_1_with_its_error(fns: dict[str, Path], tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("value\n1\n")
    proc = runtime("--function-dir", str(fns["boom"]), "--entrypoint", "main.py:main",
                   "--artifact", f"table={data}", "--output", "never:int",
                   "--result", "r.json", cwd=tmp_path)
    assert proc.returncode == 1
    assert "ValueError: no good rows" in proc.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["ok"] is False and result["error"] == "ValueError: no good rows in data.csv"


SUFFIXES = """\
    import os
    from pathlib import Path


    def main(table, plots):
        out = Path(os.environ["FNHUB_OUTPUT_DIR"])
        (out / "figures").mkdir()
        for name in sorted(p.name for p in plots.iterdir()):
            (out / "figures" / name).write_text(name)
        (out / "model").mkdir()
        (out / "model" / "weights.bin").write_text("w")
        copy = out / ("copy" + table.suffix)
        copy.write_text(table.read_text())
        return {"copy": copy, "figures": out / "figures", "model": out / "model",
                "suffix": table.suffix}
"""


@pytest.fixture
def suffixes(tmp_path: Path) -> Path:
    """A function that needs its table's suffix and returns a file, a dir and a model folder."""
    return make_function(tmp_path / "suffixes", "suffixes", SUFFIXES, inputs=[
        {"name": "table", "type": "dataset"}, {"name": "plots", "type": "dir"}], outputs=[
        {"name": "copy", "type": "dataset"}, {"name": "figures", "type": "dir"},
        {"name": "model", "type": "model"}, {"name": "suffix", "type": "str"}])


def test_artifact_folders_keep_the_files_names(suffixes: Path, tmp_path: Path) -> None:
    """Artifacts as workflow engines pass them: paths named after the artifact, no suffix."""
    table = tmp_path / "engine" / "in" / "table"  # a folder holding the file, as we write it
    table.mkdir(parents=True)
    (table / "iris.csv").write_text("a\n1\n")
    plots = tmp_path / "engine" / "in" / "plots"  # a `dir` with one file stays the folder
    plots.mkdir()
    (plots / "a.png").write_text("png")
    out = tmp_path / "engine" / "out"
    proc = runtime("--function-dir", str(suffixes), "--entrypoint", "main.py:main",
                   "--artifact", f"table:dataset={table}", "--artifact", f"plots:dir={plots}",
                   "--output", f"copy:dataset={out / 'copy'}/",
                   "--output", f"figures:dir={out / 'figures'}/",
                   "--output", f"model:model={out / 'model'}/",
                   "--output", f"suffix:str={out / 'suffix'}", "--result", "r.json",
                   "--output-dir", str(tmp_path / "work"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (out / "suffix").read_text() == ".csv"  # the function got table/iris.csv
    assert [p.name for p in (out / "copy").iterdir()] == ["copy.csv"]
    assert (out / "copy" / "copy.csv").read_text() == "a\n1\n"
    assert [p.name for p in (out / "figures").iterdir()] == ["a.png"]  # a dir: its contents
    assert (out / "model" / "model" / "weights.bin").read_text() == "w"  # a folder: kept whole
    result = json.loads((tmp_path / "r.json").read_text())["outputs"]
    assert result["copy"] == {"path": str(out / "copy" / "copy.csv")}
    assert result["figures"] == {"path": str(out / "figures")}
    assert result["model"] == {"path": str(out / "model" / "model")}

    # the folders it wrote are read back the same way by the next step
    again = tmp_path / "again"
    proc = runtime("--function-dir", str(suffixes), "--entrypoint", "main.py:main",
                   "--artifact", f"table:dataset={out / 'copy'}",
                   "--artifact", f"plots:dir={out / 'figures'}",
                   "--output", "copy:dataset", "--output", "figures:dir",
                   "--output", "model:model", "--output", f"suffix:str={again / 'suffix'}",
                   "--output-dir", str(again / "work"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (again / "suffix").read_text() == ".csv"


def test_which_artifact_paths_are_unwrapped(tmp_path: Path) -> None:
    one = tmp_path / "one"
    one.mkdir()
    (one / "iris.parquet").write_text("")
    two = tmp_path / "two"
    two.mkdir()
    (two / "a.csv").write_text("")
    (two / "b.csv").write_text("")
    plain = tmp_path / "plain.csv"
    plain.write_text("")
    assert artifact_input("dataset", str(one)) == str(one / "iris.parquet")
    assert artifact_input("model", str(one)) == str(one / "iris.parquet")
    assert artifact_input("dir", str(one)) == str(one)  # a dir input is the folder
    assert artifact_input(None, str(one)) == str(one)  # untyped: as given, as before
    assert artifact_input("dataset", str(two)) == str(two)  # not one entry: the folder
    assert artifact_input("dataset", str(plain)) == str(plain)  # a file: as is
    assert artifact_input("dataset", str(tmp_path / "missing")) == str(tmp_path / "missing")


def test_the_folder_form_needs_a_folder(suffixes: Path, tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("a\n")
    plots = tmp_path / "plots"
    plots.mkdir()
    (tmp_path / "copy").write_text("a file where the folder goes")
    proc = runtime("--function-dir", str(suffixes), "--entrypoint", "main.py:main",
                   "--artifact", f"table={table}", "--artifact", f"plots={plots}",
                   "--output", f"copy:dataset={tmp_path / 'copy'}/", "--output", "figures:dir",
                   "--output", "model:model", "--output", "suffix:str", "--result", "r.json",
                   "--output-dir", str(tmp_path / "work"), cwd=tmp_path)
    assert proc.returncode == 1
    assert json.loads((tmp_path / "r.json").read_text())["error"] == (
        f"OutputError: output 'copy': {tmp_path / 'copy'} is a file, but the folder form "
        f"({tmp_path / 'copy'}/) needs a folder there")


def test_malformed_command_lines_exit_2(tmp_path: Path) -> None:
    for args, message in [
        ((), "usage: python -m fnhub.runtime REQUEST.json RESULT.json"),
        (("--entrypoint", "a.py:f"), "the following arguments are required: --function-dir"),
        (("--function-dir", ".", "--entrypoint", "a.py:f", "--param", "x=not json"),
         "--param x: 'not json' is not JSON (use --text for strings)"),
        (("--function-dir", ".", "--entrypoint", "a.py:f", "--artifact", "novalue"),
         "--artifact 'novalue': expected NAME=VALUE"),
        (("--function-dir", ".", "--entrypoint", "a.py:f", "--output", "x:strng"),
         "--output 'x:strng': expected NAME:TYPE[=PATH] with a known type"),
        (("--function-dir", ".", "--entrypoint", "a.py:f", "--output", "n:int=out/n/"),
         "--output 'n:int=out/n/': int is a parameter, written to a file; only artifacts "
         "take the folder form PATH/"),
        (("--function-dir", ".", "--entrypoint", "a.py:f", "--artifact", "t:table=x"),
         "--artifact 't:table=x': expected NAME[:TYPE]=PATH with TYPE one of dataset, model, "
         "file, dir, metrics"),
    ]:
        proc = runtime(*args, cwd=tmp_path)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
