"""Tests for the gen-class-data catalog function, calling the entrypoint directly."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from catalog.testing import load_module, run_examples
from fnhub.core.manifest import load_manifest

FOLDER = Path(__file__).resolve().parents[1]
MODULE = load_module(FOLDER)


def test_defaults_give_a_balanced_two_class_table(out_dir: Path) -> None:
    out = MODULE.gen_class_data()
    assert out["dataset"] == out_dir / "classification.csv"
    assert out["n_rows"] == 500
    table = pd.read_csv(out["dataset"])
    assert list(table.columns) == [f"f{i}" for i in range(10)] + ["target"]
    assert table.shape == (500, 11)
    assert set(table["target"]) == {0, 1}
    assert table["target"].value_counts().min() >= 240  # balanced, up to the 1% label noise
    assert table.drop(columns="target").dtypes.eq("float64").all()
    assert not table.isna().any().any()
    assert not any(p.suffix == ".tmp" for p in out_dir.iterdir())


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path, monkeypatch) -> None:
    contents = []
    for run, seed in enumerate([3, 3, 4]):
        monkeypatch.setenv("FNHUB_OUTPUT_DIR", str(tmp_path / str(run)))
        contents.append(MODULE.gen_class_data(n_samples=50, seed=seed)["dataset"].read_bytes())
    assert contents[0] == contents[1]
    assert contents[0] != contents[2]


def test_weights_set_the_class_proportions(out_dir: Path) -> None:
    out = MODULE.gen_class_data(
        n_samples=2000, n_features=6, n_informative=3, n_classes=3, weights=[0.7, 0.2, 0.1]
    )
    shares = pd.read_csv(out["dataset"])["target"].value_counts(normalize=True)
    assert shares[0] == pytest.approx(0.7, abs=0.02)
    assert shares[1] == pytest.approx(0.2, abs=0.02)
    assert shares[2] == pytest.approx(0.1, abs=0.02)


def test_weights_may_leave_out_the_last_class(out_dir: Path) -> None:
    out = MODULE.gen_class_data(n_samples=1000, n_classes=3, weights=[0.1, 0.1])
    shares = pd.read_csv(out["dataset"])["target"].value_counts(normalize=True)
    assert shares[2] == pytest.approx(0.8, abs=0.02)


def test_informative_features_separate_the_classes(out_dir: Path) -> None:
    """The classes are learnable from informative features, not from pure noise."""
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    out = MODULE.gen_class_data(n_samples=600, n_features=4, n_informative=4, seed=0)
    table = pd.read_csv(out["dataset"])
    features, labels = table.drop(columns="target"), table["target"]
    assert cross_val_score(KNeighborsClassifier(), features, labels).mean() > 0.85
    shuffled = labels.sample(frac=1, random_state=0).to_numpy()  # break the link to the features
    assert cross_val_score(KNeighborsClassifier(), features, shuffled).mean() < 0.65


def test_every_feature_may_be_informative_and_many_classes_use_one_cluster(out_dir: Path) -> None:
    out = MODULE.gen_class_data(n_samples=100, n_features=3, n_informative=3, n_classes=8)
    assert set(pd.read_csv(out["dataset"])["target"]) == set(range(8))
    assert MODULE.clusters_per_class(3, 8) == 1
    assert MODULE.clusters_per_class(3, 4) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_informative": 11}, r"n_informative \(11\) must not exceed n_features \(10\)"),
        ({"n_classes": 1}, r"n_classes must be >= 2, got 1"),
        ({"n_samples": 0}, r"n_samples must be >= 1, got 0"),
        ({"n_samples": 2, "n_classes": 3, "n_informative": 2}, r"n_samples \(2\) must be at least"),
        ({"n_features": "10"}, r"n_features must be an integer, got '10'"),
        ({"seed": True}, r"seed must be an integer, got True"),
        ({"seed": -1}, r"seed must be between 0 and 4294967295"),
        ({"n_informative": 2, "n_classes": 5}, r"n_classes \(5\) needs n_informative >= 3"),
        ({"weights": [0.5, 0.4]}, r"weights must sum to 1, got \[0.5, 0.4\] \(sum 0.9\)"),
        ({"weights": [0.5, 0.3, 0.2]}, r"weights has 3 values; give one per class \(2\)"),
        ({"weights": [1.0]}, r"leave nothing for the last class"),
        ({"weights": [1.2, -0.2]}, r"weights must all be positive"),
        ({"weights": ["a", "b"]}, r"weights must all be numbers"),
        ({"weights": 0.5}, r"weights must be a list"),
        ({"n_samples": 10_000_000, "n_features": 10}, r"over the limit of 50,000,000"),
    ],
)
def test_bad_inputs_are_refused_clearly(kwargs: dict, message: str, out_dir: Path) -> None:
    with pytest.raises(ValueError, match=message):
        MODULE.gen_class_data(**kwargs)
    assert not out_dir.exists()


def test_writes_to_a_fresh_folder_without_fnhub_output_dir(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FNHUB_OUTPUT_DIR", raising=False)
    out = MODULE.gen_class_data(n_samples=20)
    assert out["dataset"].is_file()
    assert out["dataset"].parent.name.startswith("gen-class-data-")


def test_examples_return_the_declared_outputs(out_dir: Path) -> None:
    manifest = load_manifest(FOLDER)
    assert manifest.ref == "library/gen-class-data@1.0.2"
    assert manifest.spec.entrypoint == "gen_class_data.py:gen_class_data"

    for out in run_examples(FOLDER, MODULE.gen_class_data):
        assert len(pd.read_csv(out["dataset"])) == out["n_rows"]
