"""A new user's first hour against a real hub, through the real CLI: functions initialised from
their code publish and run unchanged, `hub install --locked` restores what fnhub.lock pins, and
API tokens are listed and revoked."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import CLI, HubProcess, start_hub, write_function

pytestmark = pytest.mark.slow


class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.hub: HubProcess = start_hub(root / "hub")
        self.admin = CLI(root / "admin", self.hub.url, self.hub.admin_token)
        token = self.admin.json("tokens", "create", "laptop", "--scope", "publish:alice",
                                "--user", "alice")
        self.alice = CLI(root / "alice", self.hub.url, token["token"])
        self.alice.ok("keys", "generate")
        self.alice.ok("keys", "register", "--namespace", "alice")
        self.csv = root / "rows.csv"
        self.csv.write_text("name,score\na,1\nb,5\nc,9\n")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("first-hour"))
    yield w
    w.hub.stop()


# Three functions written three ways: a docstring's Returns section with a Path input, a
# TypedDict over pandas DataFrames, and one plain return annotation.
DOCSTRING = '''
import csv
import os
from pathlib import Path


def keep(table: Path, min_score: int = 3) -> dict:
    """Keep the rows whose score reaches a minimum.

    Args:
        table: a CSV with a score column
        min_score: the lowest score kept
    Returns:
        filtered (dataset): the rows kept
        n_kept (int): how many
    """
    rows = [r for r in csv.DictReader(table.open()) if int(r["score"]) >= min_score]
    out = Path(os.environ["FNHUB_OUTPUT_DIR"]) / "filtered.csv"
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["name", "score"])
        writer.writeheader()
        writer.writerows(rows)
    return {"filtered": out, "n_kept": len(rows)}
'''
TYPED_DICT = '''
from typing import TypedDict

import pandas as pd


class Scaled(TypedDict):
    scaled: pd.DataFrame
    total: float


def scale(table: pd.DataFrame, factor: float = 2.0) -> Scaled:
    """Multiply the score column by a factor."""
    table = table.assign(score=table["score"] * factor)
    return {"scaled": table, "total": float(table["score"].sum())}
'''
ANNOTATION = '''
from pathlib import Path


def count(table: Path, header: bool = True) -> int:
    """Count a CSV's data rows."""
    return len(table.read_text().splitlines()) - (1 if header else 0)
'''


@pytest.mark.parametrize(("folder", "source", "callable_", "args", "expected"), [
    ("keep_rows", DOCSTRING, "keep", ["-p", "min_score=5"], {"n_kept": 2}),
    ("scale-frame", TYPED_DICT, "scale", ["-p", "factor=0.5"], {"total": 7.5}),
    ("count", ANNOTATION, "count", [], {"result": 3}),
])
def test_init_from_code_publishes_and_runs_unchanged(world: World, folder: str, source: str,
                                                     callable_: str, args: list[str],
                                                     expected: dict[str, object]) -> None:
    project = world.alice.root / "project"
    (project / folder / "src").mkdir(parents=True)
    (project / folder / "src" / "code.py").write_text(textwrap.dedent(source))
    world.alice.ok("init", folder, "--from-code", f"{folder}/src/code.py:{callable_}",
                   "--namespace", "alice", cwd=project)
    world.alice.ok("publish", folder, cwd=project)
    user = CLI(world.root / f"user-{folder}", world.hub.url)
    result = user.json("run", f"hub://alice/{folder}", "-i", f"table={world.csv}", *args)
    for name, value in expected.items():
        assert result["outputs"][name] == value
    artifacts = [v for v in result["outputs"].values() if isinstance(v, str)]
    for path in artifacts:  # dataset outputs are real files (the DataFrame written as CSV)
        assert Path(path).is_file() and Path(path).read_text().startswith("name,score")


def test_init_from_code_refuses_an_output_without_a_type(world: World) -> None:
    project = world.alice.root / "untyped"
    (project / "fn").mkdir(parents=True)
    (project / "fn" / "code.py").write_text(
        'def f(x: int):\n    """Do.\n\n    Returns:\n        y: the answer\n    """\n')
    world.alice.fails("init", "fn", "--from-code", "fn/code.py:f", cwd=project,
                      match="cannot tell the type of output 'y'")
    assert not (project / "fn" / "function.yaml").exists()


def test_install_locked_restores_exactly_what_the_lock_pins(world: World) -> None:
    fn = write_function(world.root / "scale", name="lockme", namespace="alice",
                        version="1.0.0")
    world.alice.ok("publish", str(fn))
    project = world.root / "locked-project"
    project.mkdir()
    first = CLI(world.root / "lock-user-1", world.hub.url)
    out = first.ok("install", "hub://alice/lockme:^1", cwd=project)
    assert "recorded in ./fnhub.lock" in out
    pinned = json.loads((project / "fnhub.lock").read_text())["functions"]
    assert list(pinned) == ["hub://alice/lockme:^1"]
    assert ":1.0.0@sha256:" in pinned["hub://alice/lockme:^1"]

    write_function(fn, name="lockme", namespace="alice", version="1.1.0")
    world.alice.ok("publish", str(fn))
    second = CLI(world.root / "lock-user-2", world.hub.url)
    out = second.ok("install", "--locked", cwd=project)  # no URIs: everything pinned
    assert "lockme@1.0.0" in out and "recorded" not in out
    assert [(r["name"], r["version"]) for r in second.json("list")] == [("lockme", "1.0.0")]

    elsewhere = world.root / "no-lock"
    elsewhere.mkdir()
    out = second.ok("install", "hub://alice/lockme:^1", "--no-lock", cwd=elsewhere)
    assert "lockme@1.1.0" in out and not (elsewhere / "fnhub.lock").exists()
    proc = second("install", cwd=elsewhere)
    assert proc.returncode == 2 and "--locked" in proc.stderr
    second.fails("install", "--locked", cwd=elsewhere, match="fnhub.lock pins nothing")


def test_tokens_are_listed_and_revoked(world: World) -> None:
    created = world.alice.json("tokens", "create", "ci", "--scope", "publish:alice")
    names = {t["name"]: t["id"] for t in world.alice.json("tokens", "list")}
    assert {"laptop", "ci"} <= set(names) and "token" not in json.dumps(
        world.alice.json("tokens", "list"))
    ci = CLI(world.root / "ci", world.hub.url, created["token"])
    ci.ok("tokens", "list")
    assert f"revoked token {created['id']}" in world.alice.ok("tokens", "revoke",
                                                              str(created["id"]))
    ci.fails("tokens", "list", match="token")
    assert created["id"] not in {t["id"] for t in world.alice.json("tokens", "list")}
    world.alice.fails("tokens", "revoke", str(created["id"]), match="no token with id")
