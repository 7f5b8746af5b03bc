"""The pipeline of pipeline.yaml, written in Python.

{{ cookiecutter.description.rstrip('.') }}.

The same steps, wired the same way (a test checks that both forms build the same graph). Run
either against the hub in FNHUB_HUB:

    python pipeline.py [--estimator LogisticRegression]
    hub pipeline run pipeline.yaml [-p estimator=LogisticRegression]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import fnhub

HERE = Path(__file__).resolve().parent


def build() -> fnhub.Pipeline:
    """Resolve every step's function on the hub (installed and verified) and wire them."""
    with fnhub.Pipeline("{{ cookiecutter.name }}") as p:
{%- if not cookiecutter.sample_data %}
        dataset = p.param("dataset", "str", default="iris",
                          description="A dataset hub://load-dataset knows: iris, wine, "
                                      "breast_cancer, ...")
{%- endif %}
        estimator = p.param("estimator", "str", default="RandomForestClassifier",
                            description="A scikit-learn classifier, by class name")
{%- if cookiecutter.sample_data %}
        split = p.add("split", "hub://split-dataset:^1", table=HERE / "data" / "iris.csv",
                      test_size=0.25, label_column="target")
{%- else %}
        data = p.add("data", "hub://load-dataset:^1", name=dataset)
        split = p.add("split", "hub://split-dataset:^1", table=data.outputs["dataset"],
                      test_size=0.25, label_column="target")
{%- endif %}
        train = p.add("train", "hub://train:^1", dataset=split.outputs["train"],
                      label_column="target", estimator=estimator)
        p.add("evaluate", "hub://evaluate:^1", model=train.outputs["model"],
              dataset=split.outputs["test"], label_column="target")
    return p


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
{%- if not cookiecutter.sample_data %}
    parser.add_argument("--dataset", default="iris")
{%- endif %}
    parser.add_argument("--estimator", default="RandomForestClassifier")
    args = parser.parse_args(argv)
    run = build().run(**vars(args))
    print(f"accuracy on the test split: {run.outputs['evaluate']['score']:.3f}")
    print(f"run folder: {run.run_dir}")


if __name__ == "__main__":
    main()
