"""The Dask engine with S3 storage (issue #4): a real moto S3 server and a real LocalCluster of
two worker processes. Functions, artifacts and logs go through the bucket, the caller's run
folder holds only run.json, and the caller's step cache still answers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from fnhub.core.errors import InvalidInput
from fnhub.pipeline import Pipeline, PipelineRun
from tests.helpers import CLI, free_port
from tests.pipeline.catalog import STEPS, statuses
from tests.s3 import S3Server

pytest.importorskip("distributed")


@pytest.fixture
def bucket(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket; the endpoint is in the environment before any LocalCluster starts, so
    its worker processes (and CLI subprocesses) reach the same S3 as this process."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    return s3.create_bucket()


def split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def read(s3: S3Server, uri: str) -> bytes:
    bucket, key = split(uri)
    body: Any = s3.client().get_object(Bucket=bucket, Key=key)["Body"]
    return body.read()


def keys(s3: S3Server, bucket: str, prefix: str = "") -> list[str]:
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def files_in(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.mark.slow
def test_functions_artifacts_and_logs_go_through_the_bucket(
        fns: dict[str, Path], s3: S3Server, bucket: str, tmp_path: Path) -> None:
    table = tmp_path / "mine.csv"
    table.write_text("value\n1\n2\n3\n")
    with Pipeline("through-s3") as p:
        scaled = p.add("scaled", str(fns["scale"]), table=p.param("table", type="dataset"),
                       factor=2.0)
        data = p.add("data", str(fns["numbers"]), n=3)
        p.add("broken", str(fns["boom"]), table=data.outputs["table"])
        p.add("again", str(fns["scale"]), table=scaled.outputs["scaled"], factor=0.5)
    run = p.run(engine="dask", workers=2, storage=f"s3://{bucket}/team/", table=table,
                runs_dir=tmp_path / "runs", check=False)
    assert statuses(run) == {"scaled": "succeeded", "data": "succeeded", "broken": "failed",
                             "again": "succeeded"}
    assert run.outputs["scaled"]["total"] == 12.0  # (1+2+3) * 2
    assert run.outputs["again"]["total"] == 6.0

    # the caller's table went up once, named by its digest; outputs and logs by run and step
    run_prefix = f"team/runs/{run.run_id}/"
    uploaded = keys(s3, bucket, "team/inputs/")
    assert len(uploaded) == 1 and uploaded[0].endswith("/mine.csv")
    for step in ("scaled", "again"):
        uri = run.outputs[step]["scaled"]
        assert uri == f"s3://{bucket}/{run_prefix}{step}/outputs/scaled.csv"
    assert read(s3, run.outputs["again"]["scaled"]).decode().split() == ["value", "1.0", "2.0",
                                                                         "3.0"]
    assert len(keys(s3, bucket, "team/functions/")) == 3  # scale, numbers, boom: once each

    # a failure brings its log tail back, and its whole log is in the bucket
    broken = run.steps["broken"]
    assert broken.error and "no good rows in numbers.csv" in broken.error
    assert "about to fail" in broken.log_tail
    assert broken.log == f"s3://{bucket}/{run_prefix}broken/log.txt"
    assert b"reading numbers.csv" in read(s3, str(broken.log))
    assert run.error and f"log tail ({broken.log})" in run.error

    assert files_in(run.run_dir) == ["run.json"]
    record = json.loads((run.run_dir / "run.json").read_text())
    assert record["steps"]["again"]["outputs"]["scaled"] == run.outputs["again"]["scaled"]
    assert record["steps"]["broken"]["log"] == broken.log


@pytest.mark.parametrize(("engine", "storage", "message"), [
    ("local", "s3://{bucket}/x", "storage (s3://{bucket}/x) is for the dask engine"),
    ("dask", "/mnt/shared/runs", "storage must be s3://BUCKET[/PREFIX], got '/mnt/shared/runs'"),
    ("dask", "s3://Not_A_Bucket/x", "'Not_A_Bucket' is not an S3 bucket name"),
    ("dask", "s3://{bucket}/a/../b", "the prefix has an empty, '.' or '..' part"),
    ("dask", "s3://no-such-bucket-here/x", "bucket 'no-such-bucket-here' is not usable at http"),
], ids=["local-engine", "folder", "bucket-name", "prefix", "missing-bucket"])
def test_bad_storage_is_refused_before_any_step(fns: dict[str, Path], bucket: str,
                                                tmp_path: Path, engine: str, storage: str,
                                                message: str) -> None:
    with Pipeline("refused") as p:
        p.add("data", str(fns["numbers"]), n=2)
    runs = tmp_path / "runs"
    with pytest.raises(InvalidInput, match=re.escape(message.format(bucket=bucket))):
        p.run(engine=engine, storage=storage.format(bucket=bucket), runs_dir=runs)
    assert not runs.exists()


def test_an_unreachable_endpoint_is_refused_before_any_step(
        fns: dict[str, Path], bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Pipeline("unreachable") as p:
        p.add("data", str(fns["numbers"]), n=2)
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    with pytest.raises(InvalidInput, match=f"bucket '{bucket}' is not usable at {endpoint}: "
                                           "Could not connect"):
        p.run(engine="dask", storage=f"s3://{bucket}", runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_cli_names_an_unusable_bucket(fns: dict[str, Path], bucket: str, tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(
        "apiVersion: fnhub/v1\nkind: Pipeline\nmetadata: {name: cli-s3}\n"
        "spec:\n  steps:\n    - {name: data, uses: ./functions/numbers, with: {n: 2}}\n")
    cli = CLI(tmp_path / "user")
    cli.fails("pipeline", "run", "pipeline.yaml", "--engine", "dask", "--storage",
              "s3://no-such-bucket-here", cwd=tmp_path, match="bucket 'no-such-bucket-here' "
              "is not usable")
    assert not (tmp_path / "user" / "home" / "runs").exists()


@pytest.mark.slow
def test_five_step_catalog_pipeline_on_s3_matches_local_and_caches(
        catalog_project: Path, catalog_user: CLI, s3: S3Server, bucket: str) -> None:
    storage = f"s3://{bucket}/fnhub"
    pipeline = Pipeline.from_yaml(catalog_project / "pipeline.yaml")
    local = pipeline.run()
    # the local run's cache entries hold files, which S3 workers cannot read: all steps run
    remote = pipeline.run(engine="dask", workers=2, storage=storage)
    assert statuses(remote) == dict.fromkeys(STEPS, "succeeded")

    for step, output in [("train", "metrics"), ("evaluate", "metrics")]:
        assert json.loads(read(s3, remote.outputs[step][output])) == \
            json.loads(local.outputs[step][output].read_text())
    assert read(s3, remote.outputs["describe"]["summary"]) == \
        local.outputs["describe"]["summary"].read_bytes()
    for step in STEPS:
        values = {k: v for k, v in local.outputs[step].items() if not isinstance(v, Path)}
        assert {k: remote.outputs[step][k] for k in values} == values

    # every artifact is objects in the bucket, under the run and its step
    prefix = f"fnhub/runs/{remote.run_id}/"
    artifacts = artifact_uris(local, remote)
    assert artifacts and all(uri.startswith(f"s3://{bucket}/{prefix}") for uri in artifacts)
    stored = keys(s3, bucket, prefix)
    plots = remote.outputs["describe"]["plots"]  # a folder artifact: one object per file
    assert plots.endswith("/")
    assert [key.removeprefix(split(plots)[1]) for key in stored
            if key.startswith(split(plots)[1])] == files_in(local.outputs["describe"]["plots"])
    assert {f"{prefix}{step}/log.txt" for step in STEPS} <= set(stored)
    assert files_in(remote.run_dir) == ["run.json"]

    again = Pipeline.from_yaml(catalog_project / "pipeline.yaml").run(
        engine="dask", workers=2, storage=storage)
    assert statuses(again) == dict.fromkeys(STEPS, "cached")
    assert again.outputs == remote.outputs  # the same objects, found by the caller's cache
    assert files_in(again.run_dir) == ["run.json"]

    # one parameter through the CLI: only the step it feeds runs, on the cluster
    changed = catalog_user.json("pipeline", "run", "pipeline.yaml", "--engine", "dask",
                                "--storage", storage, "-p", "bins=5", cwd=catalog_project)
    assert changed["steps"] == {**dict.fromkeys(STEPS, "cached"), "describe": "succeeded"}
    assert changed["outputs"]["describe"]["plots"] == \
        f"s3://{bucket}/fnhub/runs/{changed['run_id']}/describe/outputs/plots/"
    assert changed["outputs"]["train"] == remote.outputs["train"]  # cached: the same objects


def artifact_uris(local: PipelineRun, remote: PipelineRun) -> list[str]:
    """The remote run's artifact outputs: those the local run holds as paths."""
    return [remote.outputs[step][name] for step, outputs in local.outputs.items()
            for name, value in outputs.items() if isinstance(value, Path)]
