"""The README's feature store examples run as written: the first, its featureset.yaml in
./driver-stats then its Python block, in a fresh FNHUB_HOME; the second, the catalog's
customer-features loop, and the third, its pipeline.yaml (features built and read back by a
pipeline that trains), against a hub seeded with the catalog."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from fnhub.features.store import FeatureStore
from tests.helpers import CLI, HubProcess, start_hub

ROOT = Path(__file__).resolve().parents[2]


def _section() -> tuple[str, list[str], str]:
    """The feature store section's featureset.yaml, its Python blocks in order, and its
    pipeline.yaml."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Feature store", 1)[1].split("\n## ", 1)[0]
    [manifest, pipeline] = re.findall(r"```yaml\n(.*?)```", section, re.S)
    return manifest, re.findall(r"```python\n(.*?)```", section, re.S), pipeline


@pytest.fixture(scope="module")
def seeded_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    hub = start_hub(tmp_path_factory.mktemp("seeded") / "hub", seed=True)
    yield hub
    hub.stop()


def _run(code: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
           "FNHUB_HOME": str(cwd / "home"), "FNHUB_CONFIG_DIR": str(cwd / "config"),
           "PYTHONWARNINGS": "ignore", **extra}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.slow
def test_the_readme_example_runs(tmp_path: Path) -> None:
    manifest, [code, _catalog], _pipeline = _section()
    (tmp_path / "driver-stats").mkdir()
    (tmp_path / "driver-stats" / "featureset.yaml").write_text(manifest)
    proc = _run(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "home" / "features" / "online.db").is_file()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_catalog_example_runs_against_a_seeded_hub(tmp_path: Path,
                                                       seeded_hub: HubProcess) -> None:
    """Ingest through the seeded transform, training data, hub://train, materialize, online
    lookup: the block's own asserts check the model and that online equals offline at T."""
    _manifest, [_driver_stats, code], _pipeline = _section()
    hub = seeded_hub
    proc = _run(code, tmp_path, FNHUB_HUB=hub.url)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with FeatureStore(offline=tmp_path / "home" / "features" / "offline",
                      online=tmp_path / "home" / "features" / "online.db") as store:
        [applied] = store.list()
    assert (applied.namespace, applied.name, applied.verified) == (
        "library", "customer-features", True)
    assert applied.transform is not None
    host = hub.url.removeprefix("http://")
    assert applied.transform.uri == (f"hub://{host}/library/customer-aggregates:1.0.0@"
                                     f"{applied.transform.digest}")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_pipeline_example_runs_against_a_seeded_hub(tmp_path: Path,
                                                        seeded_hub: HubProcess) -> None:
    """`hub pipeline run` of the README's pipeline.yaml: the features step ingests the
    generated transactions through the seeded set, the training table is the store's own
    point-in-time answer, and the model trained on it finds the fraud."""
    _manifest, _blocks, pipeline = _section()
    user = CLI(tmp_path / "user", seeded_hub.url)
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "pipeline.yaml").write_text(pipeline)
    run = user.json("pipeline", "run", str(tmp_path / "project" / "pipeline.yaml"))
    assert run["status"] == "succeeded", run
    outputs = run["outputs"]
    transactions = pd.read_parquet(outputs["transactions"]["dataset"])
    assert outputs["features"]["feature_set"] == "customer-features"
    assert outputs["features"]["rows"] == len(transactions)

    features = ["customer-features:spend_7d", "customer-features:txn_count_7d",
                "customer-features:avg_amount_7d"]
    with FeatureStore(offline=outputs["features"]["offline"]) as store:
        [applied] = store.list()
        expected = store.get_historical_features(transactions, features).drop(
            columns=["transaction_id", "customer_id", "event_timestamp", "merchant_category"])
    assert (applied.namespace, applied.verified) == ("library", True)
    training = pd.read_parquet(outputs["training"]["dataset"])
    pd.testing.assert_frame_equal(training, expected)
    assert training[features].notna().all().all()  # every transaction sees its own week
    metrics = json.loads(Path(outputs["model"]["metrics"]).read_text())
    assert metrics["n_features"] == len(features) + 1  # and the amount
    assert metrics["cv_f1_macro_mean"] > 0.7
