"""`python -m fnhub.runtime` with flags, as a KFP or Argo container step calls it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


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
    ]:
        proc = runtime(*args, cwd=tmp_path)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
