"""The five-step pipeline on the real catalog (load-dataset -> split-dataset -> train ->
evaluate, with describe beside them), shared by the engine tests that run it."""

from __future__ import annotations

from fnhub.pipeline import PipelineRun

PIPELINE = """\
apiVersion: fnhub/v1
kind: Pipeline
metadata: {name: iris-classifier}
spec:
  params:
    dataset: {type: str, default: iris}
    test_size: {type: float, default: 0.2}
    cv: {type: int, default: 3}
    bins: {type: int, default: 10}
  steps:
    - name: data
      uses: hub://load-dataset:^1
      with: {name: "${{ params.dataset }}"}
    - name: split
      uses: hub://split-dataset:^1
      with: {table: "${{ steps.data.outputs.dataset }}", test_size: "${{ params.test_size }}",
             seed: 7}
    - name: train
      uses: hub://train:^1
      with:
        dataset: "${{ steps.split.outputs.train }}"
        cv: "${{ params.cv }}"
        params: {n_estimators: 25}
    - name: evaluate
      uses: hub://evaluate:^1
      with: {model: "${{ steps.train.outputs.model }}", dataset: "${{ steps.split.outputs.test }}"}
    - name: describe
      uses: hub://describe:^1
      with: {table: "${{ steps.data.outputs.dataset }}", label_column: target,
             bins: "${{ params.bins }}"}
"""
STEPS = ["data", "split", "train", "evaluate", "describe"]


def statuses(run: PipelineRun) -> dict[str, str]:
    return {name: step.status for name, step in run.steps.items()}
