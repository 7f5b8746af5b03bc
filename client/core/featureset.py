"""The feature set manifest, `featureset.yaml` (design §10): a hub item of its own kind.

A feature set shares everything with a function but its spec: the same metadata, URIs,
packages, signatures and versions. Its spec is the schema of a feature table (entities, an
event-time column, an optional `created` column, features with types), a ttl, and optionally a
transform function that builds the table from a source.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fnhub.core.errors import InvalidURI, ManifestError
from fnhub.core.manifest import (
    FEATURESET_FILE,
    HubItem,
    load_yaml,
    validate_document,
)
from fnhub.core.uri import is_local_ref, parse_uri
from fnhub.core.versions import LATEST

FEATURE_TYPES = ("int", "float", "str", "bool", "timestamp")
COLUMN_RE = re.compile(r"[a-z_][a-z0-9_]*\Z")
TTL_RE = re.compile(r"(\d+)([smhdw])\Z")
_TTL_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX_COLUMN = 63  # PostgreSQL's identifier limit; long names help nobody


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def column_problem(name: str) -> str | None:
    """Why `name` cannot be a column of a feature table, or None when it can."""
    if len(name) > MAX_COLUMN or not COLUMN_RE.match(name):
        return f"{name!r} must match [a-z_][a-z0-9_]* (at most {MAX_COLUMN} characters)"
    return None


def _check_column(value: str) -> str:
    if problem := column_problem(value):
        raise ValueError(problem)
    return value


def parse_ttl(text: str) -> timedelta:
    """`2d` → 2 days; `\\d+[smhdw]`."""
    match = TTL_RE.match(text)
    if not match:
        raise ValueError(f"ttl {text!r} must be a number and a unit (s, m, h, d, w), like 2d")
    return timedelta(**{_TTL_UNITS[match[2]]: int(match[1])})


class Column(_Strict):
    """An entity key or a feature: a column name and its type."""

    name: str
    type: Literal["int", "float", "str", "bool", "timestamp"]
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_column(value)


class Transform(_Strict):
    """The hub function (or local folder) that turns a source table into the feature table."""

    uses: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")

    @field_validator("uses")
    @classmethod
    def _uses(cls, value: str) -> str:
        if not is_local_ref(value):
            try:
                parse_uri(value)
            except InvalidURI as exc:
                raise ValueError(exc.message) from None
        return value


class FeatureSetSpec(_Strict):
    entities: list[Column] = Field(min_length=1)
    timestamp: str
    created: str | None = None
    ttl: str | None = None
    features: list[Column] = Field(min_length=1)
    transform: Transform | None = None
    online: bool = True

    @field_validator("timestamp", "created")
    @classmethod
    def _column(cls, value: str | None) -> str | None:
        return value if value is None else _check_column(value)

    @field_validator("ttl", mode="before")
    @classmethod
    def _ttl(cls, value: Any) -> Any:
        if value is not None:
            parse_ttl(str(value))
            return str(value)
        return value

    @model_validator(mode="after")
    def _unique(self) -> FeatureSetSpec:
        seen: set[str] = set()
        names = [c.name for c in self.entities] + [self.timestamp]
        names += [self.created] if self.created else []
        names += [c.name for c in self.features]
        for name in names:
            if name in seen:
                raise ValueError(f"column {name!r} is named twice (entities, timestamp, created "
                                 "and features need distinct names)")
            seen.add(name)
        return self

    @property
    def ttl_delta(self) -> timedelta | None:
        return parse_ttl(self.ttl) if self.ttl else None

    def columns(self) -> dict[str, str]:
        """Every column of the feature table with its type, in table order."""
        out = {c.name: c.type for c in self.entities}
        out[self.timestamp] = "timestamp"
        if self.created:
            out[self.created] = "timestamp"
        out.update((c.name, c.type) for c in self.features)
        return out


class FeatureSetManifest(HubItem):
    kind: Literal["FeatureSet"] = "FeatureSet"
    spec: FeatureSetSpec

    def check_transform_pin(self, pinned: str) -> None:
        """Refuse a pin (from a pipeline lock: a file anyone may edit) that is not an exact,
        digest-pinned version of this set's own hub transform within its range."""
        transform = self.spec.transform
        if transform is None or is_local_ref(transform.uses):
            raise ManifestError(f"{self.ref} has no hub transform to pin, but {pinned} was "
                                "given for one")
        wanted, pin = parse_uri(transform.uses), parse_uri(pinned)
        if pin.ref != wanted.ref or wanted.host not in (None, pin.host) or \
                pin.digest is None or pin.spec.exact is None:
            raise ManifestError(f"{pinned} is not an exact, digest-pinned version of "
                                f"{self.ref}'s transform {transform.uses}")
        # a tag other than latest names a version only the hub knows
        if wanted.spec.tag in (None, LATEST) and not wanted.spec.matches(pin.spec.exact):
            raise ManifestError(f"{pinned} is outside {self.ref}'s transform range "
                                f"{transform.uses}")


def parse_featureset(data: Any, *, source: str = FEATURESET_FILE) -> FeatureSetManifest:
    return validate_document(FeatureSetManifest, data, source=source)


def load_featureset(folder: str | Path) -> FeatureSetManifest:
    """Read `featureset.yaml` from a feature set folder."""
    path = Path(folder) / FEATURESET_FILE
    if not path.is_file():
        raise ManifestError(f"no {FEATURESET_FILE} in {Path(folder)}")
    return parse_featureset(load_yaml(path.read_bytes(), source=str(path)), source=str(path))
