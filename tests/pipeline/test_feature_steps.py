"""Feature-set steps (design §10, Pipelines), in process with local folders: a step `uses:` a
feature set with `with: {source: ...}` and ingests another step's output into the store;
its wiring, lock, outputs and errors. The same against a real hub, through the CLI, is
tests/e2e/test_feature_store.py."""

from __future__ import annotations

import json
import textwrap
from importlib.util import find_spec
from pathlib import Path

import pandas as pd
import pytest

from fnhub.core.errors import FnhubError, InvalidInput, RunError
from fnhub.features.store import FeatureStore
from fnhub.pipeline import Pipeline, featuresets
from fnhub.pipeline.engines import DaskEngine
from tests.features.factories import write_featureset
from tests.pipeline.functions import ADD, make_function

T0 = pd.Timestamp("2026-03-01", tz="UTC")

STATS = """\
    import os
    from pathlib import Path

    import pandas as pd


    def main(drivers, drop=""):
        t0 = pd.Timestamp("2026-03-01", tz="UTC")
        hours = pd.to_timedelta(range(drivers * 2), unit="h")
        frame = pd.DataFrame({
            "driver_id": [1000 + i % drivers for i in range(drivers * 2)],
            "event_timestamp": t0 + hours, "created": t0 + hours,
            "conv_rate": [i / 10 for i in range(drivers * 2)],
            "acc_rate": [1 - i / 10 for i in range(drivers * 2)],
            "avg_daily_trips": list(range(drivers * 2))})
        if drop:
            frame = frame.drop(columns=[drop])
        out = Path(os.environ["FNHUB_OUTPUT_DIR"]) / "stats.parquet"
        frame.to_parquet(out, index=False)
        return {"table": out, "n": len(frame)}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """stats(drivers, drop) -> table, n; add(a, b) -> sum; the driver-stats set (no
    transform) in ./sets/driver-stats-1.0.0."""
    make_function(tmp_path / "stats", "stats", STATS, requirements=["pandas", "pyarrow"],
                  inputs=[{"name": "drivers", "type": "int"},
                          {"name": "drop", "type": "str", "default": ""}],
                  outputs=[{"name": "table", "type": "dataset"}, {"name": "n", "type": "int"}])
    make_function(tmp_path / "add", "add", ADD, inputs=[
        {"name": "a", "type": "float"}, {"name": "b", "type": "float"}],
        outputs=[{"name": "sum", "type": "float"}])
    write_featureset(tmp_path / "sets", ttl=None)
    return tmp_path


def write_pipeline(folder: Path, features_with: str = "{source: \"${{ steps.raw.outputs.table "
                   "}}\", offline: ./offline}", uses: str = "./sets/driver-stats-1.0.0") -> Path:
    path = folder / "pipeline.yaml"
    path.write_text(textwrap.dedent(f"""\
        apiVersion: fnhub/v1
        kind: Pipeline
        metadata: {{name: driver-features}}
        spec:
          params: {{drivers: {{type: int, default: 3}}, drop: {{type: str, default: ""}}}}
          steps:
            - name: raw
              uses: ./stats
              with: {{drivers: "${{{{ params.drivers }}}}", drop: "${{{{ params.drop }}}}"}}
            - name: features
              uses: {uses}
              with: {features_with}
            - name: total
              uses: ./add
              with: {{a: "${{{{ steps.features.outputs.rows }}}}", b: 0.5}}
        """))
    return path


@pytest.mark.slow  # starts warm workers importing pandas: ~5-10 s under load
def test_a_step_ingests_another_steps_output_into_the_store(project: Path) -> None:
    pipeline = Pipeline.from_yaml(write_pipeline(project))
    node = pipeline.graph.steps["features"].function
    assert (node.kind, node.ref, node.version, node.pinned) == (
        "feature-set", "acme/driver-stats", "1.0.0", None)
    assert pipeline.graph.steps["features"].upstream == ["raw"]

    run = pipeline.run(drivers=3)
    out = run.outputs["features"]
    offline = project / "offline"
    assert (out["feature_set"], out["version"], out["rows"]) == ("driver-stats", "1.0.0", 6)
    assert out["offline"] == str(offline) and out["snapshot"].startswith("sha256:")
    assert run.outputs["total"]["sum"] == 6.5  # the rows, read downstream

    lock = json.loads((project / "pipeline.lock").read_text())["steps"]["features"]
    assert (lock["function"], lock["version"], lock["digest"]) == (
        "acme/driver-stats", "1.0.0", node.digest)

    entities = pd.DataFrame({"driver_id": [1001, 1002, 1000],
                             "event_timestamp": [T0 + pd.Timedelta(hours=h)
                                                 for h in (0.5, 4.5, 3.5)]})
    with FeatureStore(offline=offline) as store:
        [applied] = store.list()
        got = store.get_historical_features(entities, ["driver-stats:avg_daily_trips"])
    assert (applied.name, applied.digest, applied.verified) == (
        "driver-stats", node.digest, False)
    assert pd.isna(got["driver-stats:avg_daily_trips"][0])  # driver 1001's first row is at 1h
    assert got["driver-stats:avg_daily_trips"][1:].tolist() == [2, 3]

    again = pipeline.run(drivers=3)  # the raw step comes from the cache; the ingest runs again
    assert again.steps["raw"].status == "cached"
    assert again.steps["features"].status == "succeeded"
    assert again.steps["features"].cache_key is None
    assert again.outputs["features"]["snapshot"] != out["snapshot"]
    assert again.steps["total"].status == "cached"  # the same rows: the same sum


def test_bad_rows_fail_the_step_naming_the_column_and_write_nothing(project: Path) -> None:
    run = Pipeline.from_yaml(write_pipeline(project)).run(drop="conv_rate", check=False)
    assert run.steps["features"].status == "failed"
    assert "conv_rate" in (run.steps["features"].error or "")
    assert run.steps["total"].status == "skipped"
    with FeatureStore(offline=project / "offline") as store:
        [applied] = store.list()
        assert store.offline.commits(applied) == []


@pytest.mark.parametrize(("features_with", "message"), [
    ('{sorce: "${{ steps.raw.outputs.table }}"}',
     r"spec.steps\[1\].with.sorce: step 'features': feature set acme/driver-stats has no input "
     r"'sorce' \(did you mean 'source'\?\)"),
    ('{source: "${{ steps.raw.outputs.table }}", featureset: hub://evil/set:1}',
     r"with.featureset: step 'features': .* has no input 'featureset'"),
    ("{offline: ./offline}",
     r"spec.steps\[1\]: step 'features': missing required input 'source' \(dataset\)"),
    ('{source: "${{ steps.raw.outputs.n }}"}',
     r"step 'features' input 'source' \(dataset\) cannot take steps.raw.outputs.n \(int\)"),
    ("{source: ./missing.parquet, offline: 3}",
     r"with.offline: step 'features' input 'offline' \(str\) cannot take 3"),
])
def test_bad_with_names_the_step_and_the_key(project: Path, features_with: str,
                                             message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Pipeline.from_yaml(write_pipeline(project, features_with))


def test_an_unknown_feature_set_is_refused_naming_the_step(project: Path) -> None:
    (project / "empty").mkdir()
    with pytest.raises(FnhubError, match=r"spec.steps\[1\].uses: .*no function.yaml or "
                                         r"featureset.yaml"):
        Pipeline.from_yaml(write_pipeline(project, uses="./empty"))
    with pytest.raises(FnhubError, match=r"spec.steps\[1\].uses: step 'features' "
                                         r"\(hub://acme/nope:1\)"):
        Pipeline.from_yaml(write_pipeline(project, uses="hub://acme/nope:1"))


def test_a_missing_source_file_is_refused_before_anything_runs(project: Path) -> None:
    pipeline = Pipeline.from_yaml(write_pipeline(
        project, "{source: ./missing.parquet, offline: ./offline}"))
    with pytest.raises(InvalidInput, match=r"step 'features' input 'source': .*missing.parquet "
                                           r"does not exist"):
        pipeline.run()
    assert not (project / "offline").exists()


def test_the_sdk_adds_a_feature_set_step(project: Path) -> None:
    with Pipeline("sdk-features") as p:
        raw = p.add("raw", str(project / "stats"), drivers=2)
        features = p.add("features", project / "sets" / "driver-stats-1.0.0",
                         source=raw.outputs["table"], offline=str(project / "store"))
        p.add("total", str(project / "add"), a=features.outputs["rows"], b=0.0)
    run = p.run()
    assert run.outputs["total"]["sum"] == 4.0
    assert run.outputs["features"]["offline"] == str(project / "store")


@pytest.mark.parametrize("target", ["kfp", "argo"])
def test_exports_refuse_a_feature_set_step_by_name(project: Path, target: str) -> None:
    pipeline = Pipeline.from_yaml(write_pipeline(project))
    with pytest.raises(InvalidInput, match=f"step 'features' ingests into the feature set "
                                           f"acme/driver-stats, which an export to {target} "
                                           "cannot run"):
        pipeline.export(target, project / "out.yaml")
    assert not (project / "out.yaml").exists()


def test_the_dask_engine_with_s3_storage_refuses_a_feature_set_step(project: Path) -> None:
    pipeline = Pipeline.from_yaml(write_pipeline(project))
    with pytest.raises(InvalidInput, match="step 'features' ingests into the feature set "
                                           "acme/driver-stats, which the dask engine cannot "
                                           "do with storage s3://bucket/runs"):
        pipeline.run(DaskEngine(storage="s3://bucket/runs"))
    assert not (project / "offline").exists()


def test_a_run_error_names_the_failed_feature_step(project: Path) -> None:
    with pytest.raises(RunError, match=r"step 'features' failed: .*conv_rate"):
        Pipeline.from_yaml(write_pipeline(project)).run(drop="conv_rate")


@pytest.mark.slow  # a LocalCluster of worker processes
def test_the_dask_engine_runs_a_feature_set_step_on_a_worker(project: Path) -> None:
    """Workers sharing this machine's disk (the default dask mode) ingest like the local
    engine: the same rows in the same store."""
    run = Pipeline.from_yaml(write_pipeline(project)).run(engine="dask", workers=1,
                                                          cache=False)
    assert run.engine == "dask"
    assert run.outputs["features"]["rows"] == 6 and run.outputs["total"]["sum"] == 6.5
    with FeatureStore(offline=project / "offline") as store:
        [applied] = store.list()
        assert sum(c.rows for c in store.offline.commits(applied)) == 6


def test_a_feature_set_step_runs_in_this_environment_when_steps_run_in_venvs(
        project: Path) -> None:
    """fnhub (the step's code) is not in a step's venv: the ingest runs here whatever `env`."""
    frame = pd.DataFrame({"driver_id": [1], "event_timestamp": [T0], "created": [T0],
                          "conv_rate": [0.5], "acc_rate": [0.5], "avg_daily_trips": [3]})
    frame.to_parquet(project / "stats.parquet")
    with Pipeline("venv-features") as p:
        p.add("features", project / "sets" / "driver-stats-1.0.0",
              source=str(project / "stats.parquet"), offline=str(project / "store"))
    assert p.run(env="venv").outputs["features"]["rows"] == 1


def test_without_the_features_extra_the_step_is_refused_before_anything_runs(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = Pipeline.from_yaml(write_pipeline(project))
    monkeypatch.setattr(featuresets, "find_spec",
                        lambda name: None if name == "duckdb" else find_spec(name))
    with pytest.raises(InvalidInput, match=r"step 'features' ingests into a feature set, which "
                                           r"needs the fnhub\[features\] extra \(duckdb is not "
                                           r"installed\)"):
        pipeline.run()
    assert not (project / "offline").exists()


def test_a_relative_offline_from_a_parameter_is_refused_not_filled_in_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative `offline` reaching the step came from a parameter or an output; the step runs
    in its outputs folder, so it would fill a store there: refused, nothing written."""
    from fnhub.features.step import ingest_step

    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInput, match=r"'\./store' is a relative path"):
        ingest_step(tmp_path / "rows.parquet", offline="./store", featureset=str(tmp_path))
    assert list(tmp_path.iterdir()) == []
