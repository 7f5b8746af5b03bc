"""fnhub: search, install, verify, run and publish signed ML functions.

The public names load lazily, so `import fnhub.core.manifest` (as the hub does) stays cheap.
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import TYPE_CHECKING, Any

from fnhub.core import __version__

# httpx imports its own command line (click, rich's syntax highlighting, pygments) whenever
# click is installed, as it is beside the hub's uvicorn: a fifth of every `hub` command's start-up
# and several MiB of the hub's memory, for a program fnhub never runs. A None entry makes that
# one import fail, and httpx then defines a stub `httpx.main` in its place.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

_EXPORTS = {
    "ContainerEnv": "fnhub.container",  # loads the docker SDK: only when asked for
    "CurrentEnv": "fnhub.envs",
    "DaskEngine": "fnhub.pipeline",
    "FeatureStore": "fnhub.features.store",
    "Function": "fnhub.function",
    "import_function": "fnhub.function",
    "LocalEngine": "fnhub.pipeline",
    "Pipeline": "fnhub.pipeline",
    "PipelineRun": "fnhub.pipeline",
    "RunResult": "fnhub.runner",
    "Context": "fnhub.runtime",
    "context": "fnhub.runtime",
    "VenvEnv": "fnhub.envs",
}

__all__ = ["ContainerEnv", "Context", "CurrentEnv", "DaskEngine", "FeatureStore", "Function",
           "LocalEngine", "Pipeline", "PipelineRun", "RunResult", "VenvEnv", "__version__",
           "context", "import_function"]

if TYPE_CHECKING:
    from fnhub.container import ContainerEnv
    from fnhub.envs import CurrentEnv, VenvEnv
    from fnhub.features.store import FeatureStore
    from fnhub.function import Function, import_function
    from fnhub.pipeline import DaskEngine, LocalEngine, Pipeline, PipelineRun
    from fnhub.runner import RunResult
    from fnhub.runtime import Context, context


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fnhub' has no attribute {name!r}")
