"""The function manifest, `function.yaml` (design §3), with precise validation messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import semver
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
)

from fnhub.core.errors import FnhubError, ManifestError, format_validation_error
from fnhub.core.names import DEFAULT_NAMESPACE, name_problem, namespace_problem

MANIFEST_FILE = "function.yaml"
FEATURESET_FILE = "featureset.yaml"  # a feature set's manifest (fnhub.core.featureset)
API_VERSION = "fnhub/v1"
PARAMETER_TYPES = ("str", "int", "float", "bool", "list", "dict")
ARTIFACT_TYPES = ("dataset", "model", "file", "dir", "metrics")
ALL_TYPES = PARAMETER_TYPES + ARTIFACT_TYPES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Author(_Strict):
    name: str
    email: str | None = None


class Source(_Strict):
    repository: str | None = None
    commit: str | None = None


class Metadata(_Strict):
    name: str
    namespace: str = DEFAULT_NAMESPACE
    version: str
    description: str = ""
    categories: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    license: str | None = None
    authors: list[Author] = Field(default_factory=list)
    source: Source | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if problem := name_problem(value):
            raise ValueError(f"invalid name {value!r}: {problem}")
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if problem := namespace_problem(value):
            raise ValueError(f"invalid namespace {value!r}: {problem}")
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> str:
        text = str(value)
        if not semver.Version.is_valid(text):
            raise ValueError(f"{text!r} is not a SemVer 2.0 version (like 1.2.0)")
        return text


class Port(_Strict):
    """One input or output of a function."""

    name: str
    type: str
    description: str = ""
    default: Any = None

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not value.isidentifier():
            raise ValueError(f"{value!r} is not a valid Python identifier")
        return value

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if value not in ALL_TYPES:
            raise ValueError(f"unknown type {value!r} (one of: {', '.join(ALL_TYPES)})")
        return value

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A required port has no `default` key (`default: null` would make it optional)."""
        data = handler(self)
        if self.required:
            data.pop("default", None)
        return data

    @property
    def is_artifact(self) -> bool:
        return self.type in ARTIFACT_TYPES

    @property
    def required(self) -> bool:
        """An input without a `default` key must be given; `default: null` makes it optional."""
        return "default" not in self.model_fields_set


class Image(_Strict):
    base: str = "python:3.11-slim"
    ref: str | None = None
    digest: str | None = None


class Resources(_Strict):
    cpu: str | None = None
    memory: str | None = None
    gpu: int = 0

    @field_validator("cpu", "memory", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return None if value is None else str(value)


class Example(_Strict):
    description: str = ""
    inputs: dict[str, Any] = Field(default_factory=dict)


class Spec(_Strict):
    kind: Literal["job", "serving"] = "job"
    entrypoint: str
    python: str = ">=3.10"
    requirements: list[str] = Field(default_factory=list)
    inputs: list[Port] = Field(default_factory=list)
    outputs: list[Port] = Field(default_factory=list)
    image: Image = Field(default_factory=Image)
    resources: Resources = Field(default_factory=Resources)
    examples: list[Example] = Field(default_factory=list)

    @field_validator("entrypoint")
    @classmethod
    def _entrypoint(cls, value: str) -> str:
        target, sep, attr = value.partition(":")
        if not sep or not target or not attr.replace(".", "_").isidentifier():
            raise ValueError(f"{value!r} must be FILE:CALLABLE or package.module:CALLABLE")
        if target.startswith("/") or ".." in Path(target).parts:
            raise ValueError(f"{value!r} must name a file inside the function folder")
        return value

    @field_validator("requirements")
    @classmethod
    def _requirements(cls, value: list[str]) -> list[str]:
        from packaging.requirements import InvalidRequirement, Requirement

        for i, req in enumerate(value):
            try:
                Requirement(req)
            except InvalidRequirement as exc:
                raise ValueError(f"requirement [{i}] {req!r} is invalid: {exc}") from None
        return value

    @field_validator("inputs", "outputs")
    @classmethod
    def _unique(cls, ports: list[Port]) -> list[Port]:
        seen: set[str] = set()
        for port in ports:
            if port.name in seen:
                raise ValueError(f"duplicate name {port.name!r}")
            seen.add(port.name)
        return ports


class HubItem(_Strict):
    """What the manifest of every hub item (a function, a feature set) has: its metadata and
    the name its signed statements use."""

    api_version: Literal["fnhub/v1"] = Field(API_VERSION, alias="apiVersion")
    kind: str
    metadata: Metadata

    @property
    def ref(self) -> str:
        """NS/NAME@VERSION, the subject name used in signed statements."""
        return f"{self.metadata.namespace}/{self.metadata.name}@{self.metadata.version}"

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_unset=False)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)


class Manifest(HubItem):
    kind: Literal["Function"] = "Function"
    spec: Spec

    def input(self, name: str) -> Port | None:
        return next((p for p in self.spec.inputs if p.name == name), None)


Model = TypeVar("Model", bound=BaseModel)


def validate_document(model: type[Model], data: Any, *, source: str) -> Model:
    """A parsed YAML document as `model`; ManifestError naming each field's problem."""
    if not isinstance(data, dict):
        raise ManifestError(f"{source}: expected a mapping at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(f"{source}: {format_validation_error(exc)}") from None


def parse_manifest(data: Any, *, source: str = MANIFEST_FILE) -> Manifest:
    return validate_document(Manifest, data, source=source)


def load_yaml(text: str | bytes, *, source: str,
              error: type[FnhubError] = ManifestError) -> Any:
    """Parse YAML, turning a syntax error into `error` naming the line and column.

    PyYAML is imported here: the hub imports this module for the models alone (search,
    cards) and parses YAML only when a package is published (~0.7 MiB it need not hold)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{source}: malformed YAML{where}: {problem}") from None


def parse_manifest_text(text: str | bytes, *, source: str = MANIFEST_FILE) -> Manifest:
    return parse_manifest(load_yaml(text, source=source), source=source)


def load_manifest(folder: str | Path) -> Manifest:
    """Read `function.yaml` from a function folder."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file() and (Path(folder) / FEATURESET_FILE).is_file():
        raise ManifestError(f"{Path(folder)} holds a feature set ({FEATURESET_FILE}), "
                            "not a function; it cannot be run",
                            hint="apply it to a feature store: hub features apply URI")
    if not path.is_file():
        raise ManifestError(f"no {MANIFEST_FILE} in {Path(folder)}")
    return parse_manifest_text(path.read_bytes(), source=str(path))
