"""Acceptance 4, and the `hub features` CLI end to end: alice publishes a transform function
and a feature set to a real hub; bob applies the set from its URI (verified, transform
pinned), ingests raw events through the transform, builds training data, materializes and
reads online values; a tampered feature set package is refused like a function."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.features.factories import write_featureset
from tests.helpers import CLI, HubProcess, start_hub

pytestmark = pytest.mark.slow
T0 = pd.Timestamp("2026-02-01", tz="UTC")


def write_transform(folder: Path) -> Path:
    """Hourly per-driver aggregates of raw trip events (pandas in, Parquet out)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "function.yaml").write_text(textwrap.dedent("""\
        apiVersion: fnhub/v1
        kind: Function
        metadata: {name: driver-aggregates, namespace: alice, version: 1.0.0,
                   description: Per-driver rates from raw trip events}
        spec:
          entrypoint: aggregates.py:aggregate
          requirements: [pandas, pyarrow]
          inputs:
            - {name: events, type: dataset}
            - {name: window, type: str, default: 1h}
          outputs:
            - {name: features, type: dataset}
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
