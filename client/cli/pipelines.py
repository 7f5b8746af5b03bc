"""`hub pipeline`: run, show, lock and export pipeline files (`pipeline.yaml`)."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import RenderableType
from rich.live import Live
from rich.table import Table
from rich.tree import Tree

from fnhub.cli.running import _pairs
from fnhub.core.console import console, emit_json, warn
from fnhub.pipeline import Constant, Pipeline, PipelineRun, StepRun
from fnhub.pipeline.api import exporter_module

app = typer.Typer(help="Run, inspect, lock and export pipelines (pipeline.yaml).\n\n"
                       "Example: `hub pipeline run pipeline.yaml -p dataset=wine`",
                  no_args_is_help=True)

FileArg = Annotated[Path, typer.Argument(help="The pipeline file, e.g. pipeline.yaml.")]
LockOpt = Annotated[Path | None, typer.Option(
    "--lock", help="The lock file (default: pipeline.lock beside FILE).")]
SkipVerifyOpt = Annotated[bool, typer.Option(
    "--insecure-skip-verify", help="Do not check signatures (dangerous).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

_STYLES = {"pending": "dim", "queued": "dim", "running": "yellow", "succeeded": "green",
           "cached": "cyan", "failed": "bold red", "skipped": "red"}


class _StepView:
    """Step statuses during a run: a live table on a terminal, one line per change otherwise."""

    def __init__(self, pipeline: Pipeline, *, live: bool) -> None:
        self.pipeline = pipeline
        self.run: PipelineRun | None = None
        self.live = Live(self, console=console, refresh_per_second=4) if live else None

    def __enter__(self) -> _StepView:
        if self.live:
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.live.stop()

    def __call__(self, run: PipelineRun, step: StepRun) -> None:
        self.run = run
        if self.live:
            self.live.refresh()
        elif step.status != "queued":
            detail = f"  ({step.duration:.2f}s)" if step.duration and step.status != "cached" \
                else ""
            console.print(f"{step.name}: {step.status}{detail}", highlight=False)

    def __rich__(self) -> RenderableType:
        table = Table("step", "function", "status", "time", title=f"pipeline {self.pipeline.name}")
        for name, node in self.pipeline.graph.steps.items():
            step = self.run.steps[name] if self.run else None
            status = step.status if step else "pending"
            seconds = ""
            if step and status == "running" and step.started_at:
                elapsed = datetime.now(timezone.utc) - datetime.fromisoformat(step.started_at)
                seconds = f"{elapsed.total_seconds():.1f}s"
            elif step and step.duration is not None:
                seconds = f"{step.duration:.2f}s"
            table.add_row(name, f"{node.function.ref}@{node.function.version}",
                          f"[{_STYLES[status]}]{status}[/]", seconds)
        return table


def run(
    file: FileArg,
    engine: Annotated[Literal["local", "dask"], typer.Option(
        help="local (child processes here) or dask.")] = "local",
    address: Annotated[str | None, typer.Option(
        help="Dask scheduler, tcp://HOST:PORT (default: a local cluster).")] = None,
    storage: Annotated[str | None, typer.Option(
        help="Dask only: pass functions and artifacts through s3://BUCKET[/PREFIX], so "
             "workers need no shared disk (endpoint and credentials: the AWS_* variables).")
    ] = None,
    workers: Annotated[int, typer.Option(
        min=1, help="Steps run at once (local), or local Dask worker processes.")] = 2,
    param: Annotated[list[str] | None, typer.Option(
        "-p", "--param", help="A pipeline parameter, NAME=VALUE.")] = None,
    env: Annotated[Literal["current", "venv"], typer.Option(
        help="current (this Python) or venv (one per step's requirements, cached).")
    ] = "current",
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every step, even when "
                                           "the step cache has its outputs.")] = False,
    locked: Annotated[bool, typer.Option(help="Refuse to run unless the lock file matches "
                                              "(hub steps run exactly what it pins).")] = False,
    lock: LockOpt = None,
    runs_dir: Annotated[Path | None, typer.Option(
        help="Where run folders go (default: FNHUB_HOME/runs).")] = None,
    insecure_skip_verify: SkipVerifyOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a pipeline: independent steps in parallel, unchanged steps from the cache.

    Without --locked the lock file is rewritten with what every step resolved to.

    Examples:
      `hub pipeline run pipeline.yaml -p dataset=wine`
      `hub pipeline run pipeline.yaml --locked --engine dask --address tcp://10.0.0.5:8786`
      `hub pipeline run pipeline.yaml --engine dask --storage s3://my-bucket/fnhub`
    """
    params = _pairs(param or [], "-p")
    pipeline = Pipeline.from_yaml(file, locked=locked, lock_path=lock, warn=warn,
                                  insecure_skip_verify=insecure_skip_verify)
    with _StepView(pipeline, live=console.is_terminal and not as_json) as view:
        result = pipeline.run(engine, params=params, workers=workers, address=address,
                              storage=storage, env=env,
                              cache=not no_cache, locked=locked, runs_dir=runs_dir,
                              on_event=None if as_json else view, check=False)
    if as_json:
        emit_json({"status": result.status, "run_id": result.run_id,
                   "run_dir": str(result.run_dir),
                   "outputs": {step: {k: str(v) if isinstance(v, Path) else v
                                      for k, v in outputs.items()}
                               for step, outputs in result.outputs.items()},
                   "steps": {name: step.status for name, step in result.steps.items()}})
    else:
        table = Table("step", "output", title="outputs")
        table.add_column("value", overflow="fold")
        for step, outputs in result.outputs.items():
            for name, value in outputs.items():
                table.add_row(step, name, str(value))
        if table.row_count:
            console.print(table)
        console.print(f"[dim]run folder: {result.run_dir} ({result.duration:.2f}s)[/dim]")
    result.raise_for_status()


def show(
    file: FileArg,
    mermaid: Annotated[bool, typer.Option("--mermaid", help="Print a Mermaid flowchart.")
                       ] = False,
    insecure_skip_verify: SkipVerifyOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show a pipeline's steps, what each resolved to, and how they are wired.

    Examples: `hub pipeline show pipeline.yaml`, `hub pipeline show pipeline.yaml --mermaid`
    """
    pipeline = Pipeline.from_yaml(file, warn=warn, insecure_skip_verify=insecure_skip_verify)
    graph = pipeline.graph
    if mermaid:
        sys.stdout.write(graph.mermaid())
        return
    if as_json:
        emit_json(graph.to_dict())
        return
    tree = Tree(f"[bold]{graph.name}[/bold]")
    if graph.params:
        branch = tree.add("params")
        for spec in graph.params.values():
            default = "(required)" if spec.required else f"= {spec.default!r}"
            branch.add(f"{spec.name} ({spec.type}) {default}", highlight=False)
    for node in graph.steps.values():
        fn = node.function
        branch = tree.add(f"[bold]{node.name}[/bold]  {fn.ref}@{fn.version}  "
                          f"[dim]{fn.uses}  {fn.digest[:19]}…[/dim]", highlight=False)
        for name, binding in node.inputs.items():
            shown = repr(binding.value) if isinstance(binding, Constant) else str(binding)
            branch.add(f"{name} ← {shown}", highlight=False)
    console.print(tree)


def lock(file: FileArg, lock: LockOpt = None, insecure_skip_verify: SkipVerifyOpt = False,
         as_json: JsonOpt = False) -> None:
    """Resolve every step to an exact version and digest and write the lock file.

    Example: `hub pipeline lock pipeline.yaml` (then `hub pipeline run pipeline.yaml --locked`)
    """
    pipeline = Pipeline.from_yaml(file, lock_path=lock, warn=warn,
                                  insecure_skip_verify=insecure_skip_verify)
    written = pipeline.lock()
    if as_json:
        emit_json(written)
        return
    table = Table("step", "function", "digest", "uses")
    for name, step in written.steps.items():
        table.add_row(name, f"{step.function}@{step.version}", step.digest[:19] + "…", step.uses)
    console.print(table)
    console.print(f"wrote {pipeline.lock_path}")


def export(
    file: FileArg,
    to: Annotated[Literal["kfp", "argo"], typer.Option(
        "--to", help="kfp (Kubeflow Pipelines) or argo.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The file to write.")],
    hub_url: Annotated[str | None, typer.Option(
        "--hub-url", help="The hub as the cluster reaches it, where steps without an image "
                          "install their function (pipeline parameter fnhub_hub_url; default: "
                          "the configured URL of the hub the steps come from).")] = None,
    fnhub_spec: Annotated[str | None, typer.Option(
        "--fnhub-spec", help="The pip requirement that installs fnhub in those steps "
                             "(pipeline parameter fnhub_pip_spec; default: fnhub==<this "
                             "version>), e.g. 'fnhub @ https://files.example/fnhub.whl'.")
    ] = None,
    insecure_skip_verify: SkipVerifyOpt = False,
) -> None:
    """Write the pipeline for another workflow engine.

    Steps whose function has no image of its own start from its base image, pip-install fnhub
    and install the pinned function from the hub; the hub URL and the fnhub requirement are
    pipeline parameters (fnhub_hub_url, fnhub_pip_spec), so a run can change them.

    Example: `hub pipeline export pipeline.yaml --to kfp -o pipeline-kfp.yaml
    --hub-url https://hub.internal.example`
    """
    exporter_module(to)  # an unknown target fails before any function is resolved
    pipeline = Pipeline.from_yaml(file, warn=warn, insecure_skip_verify=insecure_skip_verify)
    console.print(f"wrote {pipeline.export(to, output, hub_url=hub_url, fnhub_spec=fnhub_spec)}")


app.command("run")(run)
app.command()(show)
app.command()(lock)
app.command()(export)
