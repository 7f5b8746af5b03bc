"""How a pipeline step runs in a container, for the exporters (`export_kfp`, `export_argo`).

Every exported step runs `python -m fnhub.runtime` in the flag form (see `fnhub.runtime`), in
one of two images:

- **the function's own image**, when its manifest records one (`spec.image.digest`, set when
  the image is built and published): `<spec.image.ref>@<digest>`, or, without a ref,
  `<hub host>/<ns>/<name>:<version>@<digest>` (the hub's OCI registry). Such an image holds the
  function in `fnhub.images.FUNCTION_DIR` (`/opt/fnhub/function`, where `hub build` and the
  templates' Dockerfiles put it) with the runtime and the requirements installed, so the
  command is `python -m fnhub.runtime --function-dir /opt/fnhub/function ...`.
- **otherwise the manifest's base image** (`spec.image.base`, `python:3.11-slim` by default),
  started by a short `sh -c` script whose first two arguments are the pipeline parameters
  `fnhub_hub_url` and `fnhub_pip_spec` (see `Bootstrap`): it pip-installs fnhub (the spec) and
  the function's requirements, installs the step's pinned function (`hub://NS/NAME:VERSION@
  sha256:...` from the hub at that URL: signature, key and digest are verified as for `hub
  install`; set `FNHUB_TOKEN` in the pod for a private hub), then `exec`s `python -m
  fnhub.runtime` with the installed folder. A step that runs a local folder has no URI a
  cluster could install from: exporting it is an error until the function is published or its
  image recorded.

Every input of the function is on the command line, so a step runs exactly as in the local
engine: inputs the pipeline sets come from the engine's placeholders, the others are written
in as the manifest's defaults. Strings travel as `--text NAME=VALUE`, other parameters as
`--param NAME=JSON` (the workflow engines substitute numbers, booleans, lists and maps as JSON),
input artifacts as `--artifact NAME:TYPE=PATH`; every output is declared with `--output
NAME:TYPE=PATH` at the path where the engine collects it, an artifact in the folder form
`PATH/`. So every artifact travels as a folder holding the file under its own name, and a
function that picks its reader by the file's suffix gets `.../dataset/iris.csv`, not
`.../dataset` (see "Artifact folders" in `fnhub.runtime`). A manifest's default for an artifact
input is passed as `--artifact NAME=PATH`, as is, like the local engine passes it.

A constant artifact input (a local file in the pipeline) cannot be read by a cluster: exporting
it is an error that says to make it an artifact-typed pipeline parameter, given a URI when the
run is submitted. Steps become tasks named after them with `_` turned into `-` (Kubernetes
names); two steps whose names then clash are an error.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement

from fnhub.config import Config, normalize_url
from fnhub.core import __version__
from fnhub.core.errors import InvalidInput
from fnhub.core.uri import parse_uri
from fnhub.images import FUNCTION_DIR, recorded_image
from fnhub.pipeline.graph import Constant, PipelineGraph, StepNode

RUNTIME = ["python", "-m", "fnhub.runtime"]
GPU_RESOURCE = "nvidia.com/gpu"
BOOTSTRAP_NAME = "fnhub-step"  # `$0` of the bootstrap script

# the pipeline parameters the bootstrap script gets as $1 and $2
HUB_URL_PARAM, PIP_SPEC_PARAM = "fnhub_hub_url", "fnhub_pip_spec"
_BOOTSTRAP = """\
set -e
export FNHUB_HUB="$1"
python -m pip install --quiet --no-cache-dir --disable-pip-version-check \\
    "$2"{requirements} >&2
shift 2
dir="$(python -c 'import contextlib, sys, fnhub
with contextlib.redirect_stdout(sys.stderr):
    folder = fnhub.import_function(sys.argv[1]).folder
print(folder)' {uri})"
exec python -m fnhub.runtime --function-dir "$dir" "$@"
"""


@dataclass(frozen=True)
class StepContainer:
    """The image and the command line of one step, before its input and output flags."""

    image: str
    command: list[str]
    args: list[str]  # `--entrypoint ...` (and `--function-dir` in a function image)
    bootstrap: bool = False  # args start with the hub URL and the pip spec (the bootstrap's)


@dataclass(frozen=True)
class Bootstrap:
    """The defaults of the two pipeline parameters of steps that install their function: the
    hub's URL as the cluster reaches it (`--hub-url`) and the pip requirement that installs
    fnhub (`--fnhub-spec`). Both can be changed when a run is submitted."""

    hub_url: str
    pip_spec: str

    @classmethod
    def for_graph(cls, graph: PipelineGraph, config: Config, hub_url: str | None = None,
                  pip_spec: str | None = None) -> Bootstrap:
        """Given values, checked; otherwise the configured URL of the hub the steps were
        resolved from, and this fnhub's own version (`fnhub==X.Y.Z`)."""
        if pip_spec is None:
            pip_spec = f"fnhub=={__version__}"
        elif not _pip_spec_ok(pip_spec):
            raise InvalidInput(f"invalid fnhub package spec {pip_spec!r}: expected a pip "
                               "requirement (fnhub==0.1.0, fnhub @ https://...) or a URL")
        if hub_url is not None:
            return cls(normalize_url(hub_url), pip_spec)
        hosts = sorted({host for node in graph.steps.values() if node.function.pinned
                        and (host := parse_uri(node.function.pinned).host)})
        if len(hosts) > 1:
            raise InvalidInput(f"the steps come from several hubs ({', '.join(hosts)}), and an "
                               "exported pipeline installs every step from one",
                               hint="give the hub the cluster installs from: --hub-url URL")
        return cls(config.hub_for_host(hosts[0]).url if hosts else config.hubs[0].url,
                   pip_spec)


def _pip_spec_ok(spec: str) -> bool:
    """A requirement pip reads as one, not an option (a leading `-`) or several lines."""
    if not spec.strip() or spec.startswith("-") or "\n" in spec:
        return False
    if "://" in spec:
        return True
    try:
        Requirement(spec)
    except InvalidRequirement:
        return False
    return True


def check_parameter_names(graph: PipelineGraph) -> None:
    """The bootstrap's two pipeline parameters must not hide the pipeline's own."""
    for name in (HUB_URL_PARAM, PIP_SPEC_PARAM):
        if name in graph.params:
            raise InvalidInput(f"pipeline parameter {name!r} is reserved for exports; "
                               "rename it")


def needs_bootstrap(graph: PipelineGraph) -> bool:
    """Whether some step installs its function (has no image of its own)."""
    return any(function_image(node) is None for node in graph.steps.values())


def k8s_name(name: str) -> str:
    """A pipeline or step name as a Kubernetes-style name (lowercase, digits and `-`)."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")


def task_names(graph: PipelineGraph) -> dict[str, str]:
    """{step: task name}; two steps that map to one name are an error naming both."""
    names: dict[str, str] = {}
    seen: dict[str, str] = {}
    for step in graph.steps:
        task = k8s_name(step)
        if task in seen:
            raise InvalidInput(f"steps {seen[task]!r} and {step!r} both become task {task!r} "
                               "(workflow engines do not allow '_' in names); rename one")
        seen[task] = step
        names[step] = task
    return names


def function_image(node: StepNode) -> str | None:
    """`<ref>@<digest>` of the function's recorded image; None when it has none."""
    fn = node.function
    try:
        return recorded_image(fn.manifest, parse_uri(fn.pinned).host if fn.pinned else None)
    except InvalidInput as exc:
        raise InvalidInput(f"step {node.name!r}: {exc.message}", hint=exc.hint) from None


def step_container(node: StepNode) -> StepContainer:
    """Where and how `node` runs: its function image, or the base image with the bootstrap."""
    fn = node.function
    entrypoint = ["--entrypoint", fn.manifest.spec.entrypoint]
    image = function_image(node)
    if image is not None:
        return StepContainer(image, list(RUNTIME), ["--function-dir", FUNCTION_DIR, *entrypoint])
    if fn.pinned is None:
        raise InvalidInput(
            f"cannot export step {node.name!r}: {fn.uses} is a local folder with no recorded "
            "image, so a cluster has nothing to run",
            hint="publish it (`hub publish`) and use its hub URI, or build its image and record "
                 "spec.image.ref and spec.image.digest in its function.yaml")
    for name in (HUB_URL_PARAM, PIP_SPEC_PARAM):
        if fn.manifest.input(name) is not None:
            raise InvalidInput(f"cannot export step {node.name!r}: its input {name!r} has the "
                               "name of an export parameter")
    requirements = "".join(" " + shlex.quote(r) for r in fn.manifest.spec.requirements)
    # without the hub's host: the pod installs from the hub at `fnhub_hub_url` (FNHUB_HUB)
    unqualified = str(dataclasses.replace(parse_uri(fn.pinned), host=None))
    script = _BOOTSTRAP.format(requirements=requirements, uri=shlex.quote(unqualified))
    return StepContainer(fn.manifest.spec.image.base, ["sh", "-c", script, BOOTSTRAP_NAME],
                         entrypoint, bootstrap=True)


def check_constants(node: StepNode) -> None:
    """Refuse constant artifact inputs: they are files on this machine, not in the cluster."""
    for port in node.function.manifest.spec.inputs:
        binding = node.inputs.get(port.name)
        if port.is_artifact and isinstance(binding, Constant) and binding.value is not None:
            raise InvalidInput(
                f"cannot export step {node.name!r}: input {port.name!r} is the local file "
                f"{binding.value}, which a cluster cannot read",
                hint=f"make it a pipeline parameter of type {port.type} and give its URI when "
                     "the run is submitted")
