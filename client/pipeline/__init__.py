"""Pipelines: functions composed into a typed graph, locked, and run locally or on Dask.

Modules: `api` (Pipeline, Step), `graph` (the graph model every engine and exporter walks),
`spec` (pipeline.yaml), `resolve` and `lock` (exact versions and digests, pipeline.lock),
`engine` (checks, scheduler, run record), `engines` (LocalEngine, DaskEngine: where steps
run), `execute` (one step, in a child process), `cache` (the step cache), `dask_engine` (the
Dask executor). Exporters live in `export_<target>`
modules with `export(graph: PipelineGraph, path: Path) -> None`.
"""

from fnhub.pipeline.api import Pipeline, Step, StepOutputs
from fnhub.pipeline.engine import PipelineRun, StepRun
from fnhub.pipeline.engines import DaskEngine, Engine, LocalEngine
from fnhub.pipeline.graph import (
    Binding,
    Constant,
    FunctionRef,
    OutputRef,
    ParamRef,
    ParamSpec,
    PipelineGraph,
    StepNode,
)
from fnhub.pipeline.lock import PipelineLock

__all__ = [
    "Binding", "Constant", "DaskEngine", "Engine", "FunctionRef", "LocalEngine", "OutputRef",
    "ParamRef", "ParamSpec", "Pipeline", "PipelineGraph", "PipelineLock", "PipelineRun", "Step",
    "StepNode", "StepOutputs", "StepRun",
]
