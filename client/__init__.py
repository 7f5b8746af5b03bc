"""fnhub: search, install, verify, run and publish signed ML functions.

The public names load lazily, so `import fnhub.core.manifest` (as the hub does) stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from fnhub.core import __version__

_EXPORTS = {
    "FeatureStore": "fnhub.features.store",
    "Function": "fnhub.function",
    "import_function": "fnhub.function",
    "Pipeline": "fnhub.pipeline",
    "PipelineRun": "fnhub.pipeline",
    "RunResult": "fnhub.runner",
    "Context": "fnhub.runtime",
    "context": "fnhub.runtime",
}

__all__ = ["Context", "FeatureStore", "Function", "Pipeline", "PipelineRun", "RunResult",
           "__version__", "context", "import_function"]

if TYPE_CHECKING:
    from fnhub.features.store import FeatureStore
    from fnhub.function import Function, import_function
    from fnhub.pipeline import Pipeline, PipelineRun
    from fnhub.runner import RunResult
    from fnhub.runtime import Context, context


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fnhub' has no attribute {name!r}")
