"""`pipeline.lock`: what every step's function resolved to, so a pipeline runs the same code again.

JSON next to the pipeline file (or at a path you give), written by `hub pipeline lock` and by
every `hub pipeline run` without `--locked`:

    {"version": 1, "pipeline": "train-and-evaluate",
     "steps": {"data": {"uses": "hub://load-dataset:^1", "function": "library/load-dataset",
                        "version": "1.2.0", "digest": "sha256:...",
                        "pinned": "hub://hub.example.com/library/load-dataset:1.2.0@sha256:..."},
               "prep": {"uses": "./prep", "function": "me/prep", "version": "0.1.0",
                        "digest": "sha256:...", "pinned": null}}}

With `--locked`, hub steps install exactly what `pinned` names (the hub must still serve those
bytes) and a run is refused, before any step starts, when the lock is missing or stale: a step
was added, removed or its `uses` changed, or a function's digest differs from the locked one
(a local folder whose files changed, an installed function whose files were modified).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ValidationError

from fnhub.core.errors import Conflict, InvalidInput, NotFound
from fnhub.pipeline.graph import PipelineGraph
from fnhub.store import write_atomic

LOCK_NAME = "pipeline.lock"
RELOCK = "update it with `hub pipeline lock FILE` (or Pipeline.lock())"


class LockedStep(BaseModel):
    uses: str
    function: str  # NAMESPACE/NAME
    version: str
    digest: str
    pinned: str | None = None  # the exact hub URI; None for a local folder
    # a feature set's hub transform, as the exact hub URI it resolved to
    transform: str | None = None


class PipelineLock(BaseModel):
    version: int = 1
    pipeline: str
    steps: dict[str, LockedStep]

    @classmethod
    def from_graph(cls, graph: PipelineGraph) -> PipelineLock:
        return cls(pipeline=graph.name, steps={
            node.name: LockedStep(uses=node.function.uses, function=node.function.ref,
                                  version=node.function.version, digest=node.function.digest,
                                  pinned=node.function.pinned,
                                  transform=node.function.transform)
            for node in graph.steps.values()})

    @classmethod
    def read(cls, path: Path) -> PipelineLock:
        if not path.is_file():
            raise NotFound(f"--locked: there is no lock file at {path}",
                           hint="write it with `hub pipeline lock FILE` (or Pipeline.lock())")
        try:
            return cls.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            raise InvalidInput(f"{path}: not a valid pipeline lock: "
                               f"{exc.errors()[0]['msg']}") from None

    def write(self, path: Path) -> None:
        write_atomic(path, self.model_dump_json(indent=2).encode() + b"\n")

    def entry(self, step: str, uses: str, path: Path) -> LockedStep:
        """The locked entry of `step`, which must still use what it used when locked."""
        locked = self.steps.get(step)
        if locked is None:
            raise Conflict(f"{path} is stale: step {step!r} is not in it", hint=RELOCK)
        if locked.uses != uses:
            raise Conflict(f"{path} is stale: step {step!r} uses {uses}, but the lock has "
                           f"{locked.uses}", hint=RELOCK)
        return locked

    def check(self, graph: PipelineGraph, path: Path) -> None:
        """Refuse a graph that differs from this lock; the error names the step."""
        for node in graph.steps.values():
            locked = self.entry(node.name, node.function.uses, path)
            if locked.transform != node.function.transform:
                raise Conflict(f"{path} is stale: step {node.name!r} pins the transform "
                               f"{locked.transform}, not {node.function.transform}",
                               hint=RELOCK)
            if locked.digest != node.function.digest:
                raise Conflict(
                    f"{path} is stale: step {node.name!r} ({node.function.uses}) is now "
                    f"{node.function.ref}@{node.function.version} with digest "
                    f"{node.function.digest}, but the lock has {locked.function}@"
                    f"{locked.version} with digest {locked.digest}", hint=RELOCK)
        gone = sorted(set(self.steps) - set(graph.steps))
        if gone:
            raise Conflict(f"{path} is stale: it locks step {gone[0]!r}, which the pipeline "
                           "no longer has", hint=RELOCK)
