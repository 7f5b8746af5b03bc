"""`pipeline.yaml` (design §9): its pydantic models and its `${{ ... }}` references.

    apiVersion: fnhub/v1
    kind: Pipeline
    metadata: {name: train-and-evaluate, description: ...}
    spec:
      params: {dataset: {type: str, default: iris, description: ...}}   # no default: required
      steps:
        - name: data
          uses: hub://load-dataset:^1         # or a local folder, relative to this file
          with: {name: "${{ params.dataset }}"}
        - name: model
          uses: hub://train:^1
          with: {dataset: "${{ steps.data.outputs.dataset }}", label_column: target}

A reference is a whole value: `"${{ params.NAME }}"` or `"${{ steps.STEP.outputs.NAME }}"`;
references inside longer strings, lists or maps are errors, as is any other expression. Steps
may be listed in any order (they run in dependency order); a cycle is an error that names it.
Errors name the file and the YAML path: `pipeline.yaml: spec.steps[1].with.dataset: ...`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fnhub.core.errors import InvalidInput, format_validation_error
from fnhub.core.manifest import API_VERSION, load_yaml
from fnhub.pipeline.graph import OutputRef, ParamRef

_WHOLE_REF = re.compile(r"^\$\{\{\s*(?P<expr>[^{}]*?)\s*\}\}$")
_PARAM = re.compile(r"^params\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")
_OUTPUT = re.compile(r"^steps\.(?P<step>[^.\s]+)\.outputs\.(?P<output>[A-Za-z_][A-Za-z0-9_]*)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ParamModel(_Strict):
    type: str = "str"
    default: Any = None
    description: str = ""

    @property
    def required(self) -> bool:
        """A parameter without a `default` key must be given; `default: null` makes it optional."""
        return "default" not in self.model_fields_set


class StepModel(_Strict):
    name: str
    uses: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")


class PipelineMetadata(_Strict):
    name: str
    description: str = ""


class PipelineSpec(_Strict):
    params: dict[str, ParamModel] = Field(default_factory=dict)
    steps: list[StepModel] = Field(min_length=1)


class PipelineFile(_Strict):
    api_version: Literal["fnhub/v1"] = Field(API_VERSION, alias="apiVersion")
    kind: Literal["Pipeline"] = "Pipeline"
    metadata: PipelineMetadata
    spec: PipelineSpec


def load_pipeline_file(path: Path) -> PipelineFile:
    """Read and validate a pipeline file; errors name the file and the field."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"no pipeline file at {path}") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a folder, not a pipeline file") from None
    data = load_yaml(text, source=str(path), error=InvalidInput)
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: expected a mapping at the top level")
    try:
        return PipelineFile.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(f"{path}: {format_validation_error(exc)}") from None


def parse_value(value: Any) -> Any:
    """A `with:` value: a ParamRef or OutputRef for a reference, else the value itself."""
    if isinstance(value, str) and "${{" in value:
        match = _WHOLE_REF.fullmatch(value.strip())
        if not match:
            raise InvalidInput(f"{value!r}: a reference must be the whole value, like "
                               "\"${{ params.NAME }}\" or \"${{ steps.STEP.outputs.NAME }}\"")
        expr = match["expr"]
        if param := _PARAM.fullmatch(expr):
            return ParamRef(param["name"])
        if output := _OUTPUT.fullmatch(expr):
            return OutputRef(output["step"], output["output"])
        raise InvalidInput(f"unknown reference {expr!r}: expected params.NAME or "
                           "steps.STEP.outputs.NAME")
    if _has_nested_ref(value):
        raise InvalidInput("references cannot be nested inside lists or maps; pass the "
                           "referenced value as its own input")
    return value


def _has_nested_ref(value: Any) -> bool:
    if isinstance(value, str):
        return "${{" in value
    if isinstance(value, dict):
        return any(_has_nested_ref(k) or _has_nested_ref(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nested_ref(v) for v in value)
    return False
