"""Acceptance 4, and the `hub features` CLI end to end: alice publishes a transform function
and a feature set to a real hub; bob applies the set from its URI (verified, transform
pinned), ingests raw events through the transform, builds training data, materializes and
reads online values; a tampered feature set package is refused like a function. And Build
item 6: `hub pipeline run` of a pipeline whose steps generate raw events, ingest them through
the set's URI, read them point in time (get-historical-features) and train (train)."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from fnhub.features.store import FeatureStore
from tests.features.factories import write_featureset
from tests.helpers import CLI, HubProcess, start_hub
from tests.pipeline.functions import make_function

pytestmark = pytest.mark.slow
CATALOG = Path(__file__).resolve().parents[2] / "catalog"
T0 = pd.Timestamp("2026-02-01", tz="UTC")


def write_transform(folder: Path, name: str = "driver-aggregates",
                    version: str = "1.0.0") -> Path:
    """Hourly per-driver aggregates of raw trip events (pandas in, Parquet out)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "function.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: fnhub/v1
        kind: Function
        metadata: {{name: {name}, namespace: alice, version: {version},
                   description: Per-driver rates from raw trip events}}
        spec:
          entrypoint: aggregates.py:aggregate
          requirements: [pandas, pyarrow]
          inputs:
            - {{name: events, type: dataset}}
            - {{name: window, type: str, default: 1h}}
          outputs:
            - {{name: features, type: dataset}}
        """))
    (folder / "aggregates.py").write_text(textwrap.dedent("""\
        from pathlib import Path

        import fnhub
        import pandas as pd


        def aggregate(events: Path, window: str = "1h") -> Path:
            df = pd.read_parquet(events)
            df["event_timestamp"] = df["ts"].dt.floor(window)
            out = df.groupby(["driver_id", "event_timestamp"], as_index=False).agg(
                conv_rate=("converted", "mean"), acc_rate=("accepted", "mean"),
                avg_daily_trips=("converted", "size"))
            out["created"] = out["event_timestamp"]
            path = fnhub.context().output_dir / "features.parquet"
            out.to_parquet(path)
            return path
        """))
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, CLI, CLI]]:
    root = tmp_path_factory.mktemp("features")
    hub = start_hub(root / "hub")
    admin = CLI(root / "admin", hub.url, hub.admin_token)
    token = admin.json("tokens", "create", "alice", "--scope", "publish:alice",
                       "--user", "alice")["token"]
    alice = CLI(root / "alice", hub.url, token)
    alice.ok("keys", "generate")
    alice.ok("keys", "register", "--namespace", "alice")
    alice.ok("publish", str(write_transform(root / "transform")))
    for version in ("1.0.0", "1.0.1"):
        folder = write_featureset(root / "sets", "driver-stats", version, namespace="alice",
                                  transform={"uses": "hub://alice/driver-aggregates:^1",
                                             "with": {"window": "1h"}})
        published = alice.json("publish", str(folder))
        assert published["manifest"]["kind"] == "FeatureSet"
    yield hub, alice, CLI(root / "bob", hub.url)
    hub.stop()


def test_a_published_set_is_searched_shown_and_not_runnable(
        setup: tuple[HubProcess, CLI, CLI]) -> None:
    _, _, bob = setup
    found = bob.json("search", "--kind", "feature-set")["items"]
    assert [(i["name"], i["kind"]) for i in found] == [("driver-stats", "feature-set")]
    assert [i["name"] for i in bob.json("search", "--kind", "function")["items"]] == [
        "driver-aggregates"]
    assert "conv_rate" in bob.ok("show", "hub://alice/driver-stats")
    bob.fails("run", "hub://alice/driver-stats:1.0.0",
              match="holds a feature set (featureset.yaml), not a function")


def test_another_user_applies_ingests_and_serves(setup: tuple[HubProcess, CLI, CLI],
                                                 tmp_path: Path) -> None:
    _, _, bob = setup
    [applied] = bob.json("features", "apply", "hub://alice/driver-stats:1.0.0")
    assert (applied["name"], applied["version"], applied["verified"]) == (
        "driver-stats", "1.0.0", True)
    transform = applied["transform"]
    assert transform["uri"].endswith(f"/alice/driver-aggregates:1.0.0@{transform['digest']}")
    assert bob.json("verify", "hub://alice/driver-stats:1.0.0")["digest"] == applied["digest"]

    events = pd.DataFrame({
        "driver_id": [1, 1, 1, 2, 2],
        "ts": [T0 + pd.Timedelta(minutes=m) for m in (5, 20, 70, 10, 15)],
        "converted": [1.0, 0.0, 1.0, 1.0, 1.0], "accepted": [1.0, 1.0, 0.0, 0.0, 1.0]})
    events.to_parquet(tmp_path / "events.parquet")
    assert bob.json("features", "ingest", "driver-stats", "--source",
                    str(tmp_path / "events.parquet")) == {"feature_set": "driver-stats",
                                                          "rows": 3}
    entities = pd.DataFrame({"driver_id": [2, 1, 1, 3],
                             "event_timestamp": [T0 + pd.Timedelta(hours=h)
                                                 for h in (1, 0.5, 1.5, 1)]})
    entities.to_parquet(tmp_path / "entities.parquet")
    out = tmp_path / "train.parquet"
    bob.json("features", "get-historical", "--entities", str(tmp_path / "entities.parquet"),
             "--features", "driver-stats:conv_rate,driver-stats:avg_daily_trips", "-o", str(out))
    train = pd.read_parquet(out)
    assert train["driver_id"].tolist() == [2, 1, 1, 3]  # the input order
    assert train["driver-stats:conv_rate"].iloc[:3].tolist() == [1.0, 0.5, 1.0]
    assert pd.isna(train["driver-stats:conv_rate"].iloc[3])  # driver 3 has no features
    assert bob.json("features", "materialize", "--end", "2026-02-01T02:00:00Z") == {
        "driver-stats": 2}
    online = bob.json("features", "get-online", "--features",
                      "driver-stats:conv_rate,driver-stats:avg_daily_trips",
                      "--entity", "driver_id=1", "--entity", "driver_id=3")
    assert online == {"driver_id": [1, 3], "driver-stats:conv_rate": [1.0, None],
                      "driver-stats:avg_daily_trips": [1, None]}
    listed = bob.json("features", "list")
    assert [(a["name"], a["version"]) for a in listed] == [("driver-stats", "1.0.0")]
    bob.fails("features", "ingest", "nope", "--source", str(tmp_path / "events.parquet"),
              match="no feature set 'nope' is applied")


def test_a_tampered_feature_set_package_is_refused(setup: tuple[HubProcess, CLI, CLI],
                                                   tmp_path: Path) -> None:
    hub, _, _ = setup
    carol = CLI(tmp_path / "carol", hub.url)
    detail = carol.json("show", "hub://alice/driver-stats:1.0.1")
    hexdigest = detail["version"]["package"]["digest"].removeprefix("sha256:")
    [blob] = [p for p in hub.data_dir.rglob(hexdigest) if p.is_file()]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    carol.fails("features", "apply", "hub://alice/driver-stats:1.0.1", match="digest")
    assert carol.json("features", "list") == []
    assert not list((carol.root / "home" / "functions").glob("*/alice/driver-stats/1.0.1"))


# -- Build item 6: a pipeline builds the features, reads them point in time and trains -------

EVENTS = """\
    import os
    from pathlib import Path

    import pandas as pd


    def main(drivers: int = 4, hours: int = 6) -> dict:
        t0 = pd.Timestamp("2026-02-01", tz="UTC")
        rows = [(d, t0 + pd.Timedelta(minutes=20 * k + d), (k + d) % 3 != 0, k % 2 == 0)
                for d in range(1, drivers + 1) for k in range(hours * 3)]
        events = pd.DataFrame(rows, columns=["driver_id", "ts", "converted", "accepted"])
        events[["converted", "accepted"]] = events[["converted", "accepted"]].astype(float)
        # labels at half past each hour (the features of that hour are known then), and
        # one before any event: its features are missing
        labels = pd.DataFrame(
            [(d, t0 + pd.Timedelta(minutes=60 * h + 30), (d + h) % 2)
             for d in range(1, drivers + 1) for h in range(-1, hours)],
            columns=["driver_id", "event_timestamp", "label"])
        out = Path(os.environ["FNHUB_OUTPUT_DIR"])
        events.to_parquet(out / "events.parquet", index=False)
        labels.to_parquet(out / "labels.parquet", index=False)
        return {"events": out / "events.parquet", "labels": out / "labels.parquet"}
"""

FEATURES = ["driver-stats:conv_rate", "driver-stats:acc_rate", "driver-stats:avg_daily_trips"]


def _write_events(folder: Path) -> None:
    """The local `events` function both pipelines start from, in `folder/events`."""
    make_function(folder / "events", "events", EVENTS, requirements=["pandas", "pyarrow"],
                  inputs=[{"name": "drivers", "type": "int", "default": 4},
                          {"name": "hours", "type": "int", "default": 6}],
                  outputs=[{"name": "events", "type": "dataset"},
                           {"name": "labels", "type": "dataset"}])


def _write_pipeline(folder: Path, name: str, featureset: str, features_with: str,
                    more_steps: str = "") -> Path:
    """events (local) -> features (`featureset`, source = events, plus `features_with`)
    -> `more_steps`."""
    _write_events(folder)
    path = folder / "pipeline.yaml"
    path.write_text(textwrap.dedent(f"""\
        apiVersion: fnhub/v1
        kind: Pipeline
        metadata: {{name: {name}}}
        spec:
          steps:
            - name: events
              uses: ./events
            - name: features
              uses: {featureset}
              with: {{source: "${{{{ steps.events.outputs.events }}}}"{features_with}}}
        """) + textwrap.indent(textwrap.dedent(more_steps), "    "))
    return path


def write_training_pipeline(folder: Path, featureset: str) -> Path:
    """events -> features (the set's URI) -> training (get-historical-features) -> model."""
    return _write_pipeline(folder, "driver-model", featureset, "", f"""\
        - name: training
          uses: hub://library/get-historical-features:^1
          with:
            entities: "${{{{ steps.events.outputs.labels }}}}"
            features: {FEATURES}
            offline: "${{{{ steps.features.outputs.offline }}}}"
            snapshot: "${{{{ steps.features.outputs.snapshot }}}}"
            drop_columns: [driver_id, event_timestamp]
        - name: model
          uses: hub://library/train:^1
          with:
            dataset: "${{{{ steps.training.outputs.dataset }}}}"
            label_column: label
            params: {{n_estimators: 10}}
            cv: 2
        """)


@pytest.fixture(scope="module")
def with_catalog(setup: tuple[HubProcess, CLI, CLI],
                 tmp_path_factory: pytest.TempPathFactory) -> tuple[HubProcess, CLI]:
    """The hub of `setup` also holds the catalog's get-historical-features and train."""
    hub, alice, _ = setup
    root = tmp_path_factory.mktemp("operator")
    admin = CLI(root, hub.url, hub.admin_token)
    admin.ok("keys", "generate", "--name", "library")
    admin.ok("keys", "register", "library", "--namespace", "library")
    for name in ("get-historical-features", "train"):
        shutil.copytree(CATALOG / name, root / "catalog" / name,
                        ignore=shutil.ignore_patterns("__pycache__", "tests"))
    admin.ok("catalog", "publish", str(root / "catalog"))
    return hub, alice


def test_a_pipeline_builds_features_reads_them_point_in_time_and_trains(
        with_catalog: tuple[HubProcess, CLI], tmp_path: Path) -> None:
    hub, _ = with_catalog
    dave = CLI(tmp_path / "dave", hub.url)
    pipeline = write_training_pipeline(tmp_path / "project", "hub://alice/driver-stats:1.0.0")
    run = dave.json("pipeline", "run", str(pipeline))
    assert run["status"] == "succeeded", run
    ingested = run["outputs"]["features"]
    offline = dave.root / "home" / "features" / "offline"  # the configured (default) store
    assert (ingested["feature_set"], ingested["version"], ingested["offline"]) == (
        "driver-stats", "1.0.0", str(offline))
    assert ingested["rows"] == 4 * 6  # the transform's hourly rows per driver

    # the set was applied verified, from its URI, its transform pinned; and locked
    with FeatureStore(offline=offline) as store:
        [applied] = store.list()
        labels = pd.read_parquet(run["outputs"]["events"]["labels"])
        expected = store.get_historical_features(labels, FEATURES).drop(
            columns=["driver_id", "event_timestamp"])
    assert (applied.name, applied.version, applied.verified) == ("driver-stats", "1.0.0", True)
    assert applied.transform is not None and "/alice/driver-aggregates:1.0.0@" in (
        applied.transform.uri)
    locked = json.loads((pipeline.parent / "pipeline.lock").read_text())["steps"]["features"]
    assert (locked["function"], locked["version"], locked["digest"]) == (
        "alice/driver-stats", "1.0.0", applied.digest)
    assert locked["pinned"].endswith(f"/alice/driver-stats:1.0.0@{applied.digest}")

    # the training table is the store's point-in-time answer, and the model trained on it
    training = pd.read_parquet(run["outputs"]["training"]["dataset"])
    pd.testing.assert_frame_equal(training, expected)
    assert training[FEATURES].isna().all(axis=1).sum() == 4  # the labels before any event
    assert training[FEATURES].notna().all(axis=1).sum() == 4 * 6
    metrics = json.loads(Path(run["outputs"]["model"]["metrics"]).read_text())
    assert metrics["n_rows"] == len(training) == 4 * 7
    assert metrics["n_features"] == len(FEATURES)

    # --locked runs it again from what the lock pins: the ingest runs again (never cached),
    # so the snapshot moves and the training step is not served stale from the cache
    again = dave.json("pipeline", "run", str(pipeline), "--locked")
    assert again["steps"] == {"events": "cached", "features": "succeeded",
                              "training": "succeeded", "model": "cached"}
    assert again["outputs"]["features"]["snapshot"] != ingested["snapshot"]


def test_a_tampered_feature_set_package_is_refused_in_a_pipeline(
        with_catalog: tuple[HubProcess, CLI], tmp_path: Path) -> None:
    hub, alice = with_catalog
    folder = write_featureset(tmp_path / "sets", "driver-stats", "1.0.2", namespace="alice",
                              transform={"uses": "hub://alice/driver-aggregates:^1",
                                         "with": {"window": "1h"}})
    alice.ok("publish", str(folder))
    digest = alice.json("show", "hub://alice/driver-stats:1.0.2")["version"]["package"]["digest"]
    [blob] = [p for p in hub.data_dir.rglob(digest.removeprefix("sha256:")) if p.is_file()]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))

    erin = CLI(tmp_path / "erin", hub.url)
    pipeline = write_training_pipeline(tmp_path / "project", "hub://alice/driver-stats:1.0.2")
    erin.fails("pipeline", "run", str(pipeline),
               match="spec.steps[1].uses: step 'features' (hub://alice/driver-stats:1.0.2)")
    erin.fails("pipeline", "run", str(pipeline), match="digest")
    assert not (erin.root / "home" / "features").exists()  # nothing applied, nothing ingested
    assert not list((erin.root / "home" / "functions").glob("*/alice/driver-stats/1.0.2"))
    assert not (erin.root / "home" / "runs").exists()  # refused before any step ran


def write_ingest_pipeline(folder: Path, featureset: str) -> Path:
    """events -> features (the set's URI) into ./offline, next to the file."""
    return _write_pipeline(folder, "driver-features", featureset, ", offline: ./offline")


def _applied_transform(offline: Path) -> str:
    with FeatureStore(offline=offline) as store:
        [applied] = store.list()
    assert applied.transform is not None
    return applied.transform.uri


def test_a_locked_pipeline_applies_its_set_with_the_transform_it_locked(
        setup: tuple[HubProcess, CLI, CLI], tmp_path: Path) -> None:
    """The lock pins the set's transform range to the version it resolved to: after a newer
    transform is published, `--locked` on a fresh store still applies the locked one (an
    unlocked run moves on), a store holding the set with another transform is refused
    rather than mixed, and a lock pin naming some other function is refused."""
    hub, alice, _ = setup
    alice.ok("publish", str(write_transform(tmp_path / "t1", "pin-aggregates", "1.0.0")))
    alice.ok("publish", str(write_featureset(
        tmp_path / "sets", "pin-stats", "1.0.0", namespace="alice",
        transform={"uses": "hub://alice/pin-aggregates:^1", "with": {"window": "1h"}})))
    gina = CLI(tmp_path / "gina", hub.url)
    pipeline = write_ingest_pipeline(tmp_path / "project", "hub://alice/pin-stats:1.0.0")
    lock_file, offline = pipeline.parent / "pipeline.lock", pipeline.parent / "offline"
    assert gina.json("pipeline", "run", str(pipeline))["status"] == "succeeded"
    locked = json.loads(lock_file.read_text())
    pin = locked["steps"]["features"]["transform"]
    assert "/alice/pin-aggregates:1.0.0@sha256:" in pin and _applied_transform(offline) == pin

    alice.ok("publish", str(write_transform(tmp_path / "t2", "pin-aggregates", "1.1.0")))
    shutil.rmtree(offline)
    again = gina.json("pipeline", "run", str(pipeline), "--locked")
    assert again["status"] == "succeeded" and _applied_transform(offline) == pin

    shutil.rmtree(offline)
    gina.json("pipeline", "run", str(pipeline))  # unlocked: the range names 1.1.0 now
    assert "/alice/pin-aggregates:1.1.0@" in _applied_transform(offline)
    assert "/alice/pin-aggregates:1.1.0@" in json.loads(lock_file.read_text())[
        "steps"]["features"]["transform"]
    lock_file.write_text(json.dumps(locked))  # the old lock, on the store the new one filled
    refused = gina("pipeline", "run", str(pipeline), "--locked")  # the step fails
    assert refused.returncode != 0 and (
        "step 'features' failed: Conflict: pin-stats 1.0.0 is applied here with transform "
        f"{pin.replace('1.0.0@', '1.1.0@').split('@')[0]}@") in refused.stderr, refused.stderr

    shutil.rmtree(offline)
    locked["steps"]["features"]["transform"] = pin.replace("pin-aggregates", "driver-aggregates")
    lock_file.write_text(json.dumps(locked))
    gina.fails("pipeline", "run", str(pipeline), "--locked",
               match="is not an exact, digest-pinned version of alice/pin-stats@1.0.0's transform")
    assert not offline.exists()  # refused before anything ran
