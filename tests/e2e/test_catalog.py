"""The catalog through a real hub: `hub catalog publish`, search, the two chains of issue #3,
every function in a venv holding only its declared requirements, and model-server over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import fnhub
from fnhub.core.items import load_item
from fnhub.core.publishing import catalog_folders
from tests.helpers import CLI, HUB_BIN, ROOT, HubProcess, free_port, start_hub

pytestmark = pytest.mark.slow
CATALOG = ROOT / "catalog"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    process = start_hub(tmp_path_factory.mktemp("catalog-hub") / "data")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def admin(hub: HubProcess, tmp_path_factory: pytest.TempPathFactory) -> CLI:
    cli = CLI(tmp_path_factory.mktemp("operator"), hub.url, hub.admin_token)
    cli.ok("keys", "generate", "--name", "library")
    cli.ok("keys", "register", "library", "--namespace", "library")
    return cli


@pytest.fixture(scope="module")
def published(admin: CLI) -> list[dict]:
    return admin.json("catalog", "publish", str(CATALOG))


@pytest.fixture
def as_user(hub: HubProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CLI:
    user = CLI(tmp_path / "user", hub.url)
    for key, value in user.env.items():
        if key.startswith("FNHUB_"):
            monkeypatch.setenv(key, value)
    return user


def test_catalog_publish_then_everything_is_searchable(published: list[dict], admin: CLI) -> None:
    folders = [p.name for p in catalog_folders(CATALOG)]  # functions and feature sets
    assert len(folders) >= 15
    assert sorted(r["ref"].split("/")[1].split("@")[0] for r in published) == folders
    assert {r["status"] for r in published} == {"published"}

    again = admin.json("catalog", "publish", str(CATALOG))
    assert {r["status"] for r in again} == {"unchanged"}

    sets = admin.json("search", "--kind", "feature-set", "--limit", "100")["items"]
    assert [i["name"] for i in sets] == ["customer-features"]
    for name in folders:
        manifest = load_item(CATALOG / name)
        by_name = admin.json("search", name)["items"]
        assert f"library/{name}" in [f"{i['namespace']}/{i['name']}" for i in by_name]
        category = manifest.metadata.categories[0]
        by_category = admin.json("search", "--category", category, "--limit", "100")["items"]
        assert name in [i["name"] for i in by_category]


def test_changed_content_without_a_version_bump_is_refused(published: list[dict], admin: CLI,
                                                           tmp_path: Path) -> None:
    copy = tmp_path / "catalog"
    shutil.copytree(CATALOG / "describe", copy / "describe")
    (copy / "describe" / "README.md").write_text("changed\n")
    admin.fails("catalog", "publish", str(copy), match="bump metadata.version")


def test_train_and_evaluate_chain(published: list[dict], as_user: CLI, tmp_path: Path) -> None:
    data = fnhub.import_function("hub://load-dataset:^1")(name="iris")
    split = fnhub.import_function("hub://split-dataset:^1")(table=data["dataset"], seed=7)
    assert split["sizes"]["train"] + split["sizes"]["test"] == 150
    trained = fnhub.import_function("hub://train:^1")(dataset=split["train"], cv=3)
    assert trained["cv_score"] > 0.85
    assert (trained["model"] / "model.json").is_file()
    evaluated = fnhub.import_function("hub://evaluate:^1")(model=trained["model"],
                                                           dataset=split["test"])
    assert evaluated["score"] > 0.85
    metrics = json.loads(Path(evaluated["metrics"]).read_text())
    assert metrics["accuracy"] == pytest.approx(evaluated["score"])

    # a labelled batch with one feature shifted the way a broken sensor would shift it
    lines = Path(split["test"]).read_text().splitlines()
    header = lines[0].split(",")
    shifted_column = header.index("petal length (cm)")
    rows = [line.split(",") for line in lines[1:]]
    for row in rows:
        row[shifted_column] = str(float(row[shifted_column]) + 3.0)
    current = tmp_path / "current.csv"
    current.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")

    predicted = fnhub.import_function("hub://batch-predict:^1")(
        model=trained["model"], dataset=current, reference=split["train"])
    assert predicted["n_rows"] == split["sizes"]["test"]
    scored = Path(predicted["predictions"]).read_text().splitlines()
    assert len(scored) == 1 + split["sizes"]["test"]
    outputs = ["prediction", "proba_0", "proba_1", "proba_2"]
    features = [c for c in header if c != "target"]
    assert scored[0].split(",") == features + outputs  # batch-predict drops the label
    own_drift = json.loads(Path(predicted["drift"]).read_text())
    assert own_drift["computed"] is True
    assert "petal length (cm)" in own_drift["drifted_features"]

    # the scored batch itself: drift-detect compares its features and ignores the outputs
    drift = fnhub.import_function("hub://drift-detect:^1.1")(
        reference=split["train"], current=predicted["predictions"], label_column="target")
    summary = json.loads(Path(drift["summary"]).read_text())
    assert drift["drifted"] is True
    assert "petal length (cm)" in summary["drifted_features"]
    assert summary["ignored_columns"] == outputs
    assert summary["n_features"] == len(features)


def test_every_function_runs_in_a_venv_of_its_own_requirements(published: list[dict],
                                                                as_user: CLI,
                                                                tmp_path: Path) -> None:
    def run(uri: str, **inputs: object) -> dict:
        result = fnhub.import_function(uri).run(env="venv", **inputs)
        return result.outputs

    iris = run("hub://load-dataset:^1", name="iris")["dataset"]
    assert run("hub://gen-class-data:^1", n_samples=120, n_features=6)["n_rows"] == 120
    assert run("hub://clean-data:^1", table=iris)["n_rows"] <= 150
    assert run("hub://describe:^1", table=iris, bins=5)["n_rows"] == 150
    assert len(run("hub://feature-selection:^1", table=iris, k=2)["features"]) == 2
    split = run("hub://split-dataset:^1", table=iris)
    model = run("hub://train:^1", dataset=split["train"], cv=3)["model"]
    tuned = run("hub://tune:^1", dataset=split["train"], cv=2,
                param_grid={"n_estimators": [10, 20]})
    assert tuned["best_params"]["n_estimators"] in (10, 20)
    assert run("hub://evaluate:^1", model=model, dataset=split["test"])["score"] > 0.85
    assert run("hub://batch-predict:^1", model=model, dataset=split["test"])["n_rows"] == 30
    report = run("hub://drift-detect:^1", reference=split["train"], current=split["test"])
    assert Path(report["html"]).read_text().startswith("<!")

    port = free_port()
    user = CLI(as_user.root, as_user.hub_url)
    server = subprocess.Popen(
        [HUB_BIN, "run", "hub://model-server:^1", "--env", "venv", "-i", f"model={model}",
         "-p", f"port={port}"], env=user.env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
            assert time.monotonic() < deadline, "model-server did not come up"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        features = httpx.get(f"http://127.0.0.1:{port}/metadata").json()["features"]
        row = dict(zip(features, [5.1, 3.5, 1.4, 0.2], strict=True))
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json={"instances": [row]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == [0]
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=30)
    assert code == 0
    assert os.path.isdir(model)


def test_describe_explains_bad_input_in_one_line(published: list[dict], as_user: CLI,
                                                 tmp_path: Path) -> None:
    """Issue #3, acceptance 4, through `hub run` of the published function."""
    iris = tmp_path / "iris.csv"
    as_user.ok("run", "hub://load-dataset:^1", "-p", "name=iris", "--out", str(tmp_path / "d"))
    shutil.copyfile(next((tmp_path / "d" / "outputs").rglob("*.csv")), iris)
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b,c\n")
    picture = tmp_path / "picture.csv"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    for inputs, problem in [
        (["-i", f"table={iris}", "-p", "label_column=species"],
         "label column 'species' not found in iris.csv"),
        (["-i", f"table={empty}"], "table empty.csv is empty (no rows)"),
        (["-i", f"table={picture}"], "could not parse picture.csv as CSV"),
    ]:
        output = as_user.fails("run", "hub://describe:^1", *inputs, match=problem)
        assert len([line for line in output.splitlines() if line.startswith("error")]) == 1
