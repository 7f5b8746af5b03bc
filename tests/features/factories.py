"""Feature set folders for tests: a `featureset.yaml` written from keyword arguments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def featureset_dict(name: str = "driver-stats", version: str = "1.0.0", *,
                    namespace: str = "acme", ttl: str | None = "2d",
                    created: str | None = "created", transform: dict[str, Any] | None = None,
                    features: list[dict[str, str]] | None = None,
                    entities: list[dict[str, str]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "entities": entities or [{"name": "driver_id", "type": "int"}],
        "timestamp": "event_timestamp",
        "features": features or [{"name": "conv_rate", "type": "float"},
                                 {"name": "acc_rate", "type": "float"},
                                 {"name": "avg_daily_trips", "type": "int"}],
        "online": True,
    }
    if created:
        spec["created"] = created
    if ttl:
        spec["ttl"] = ttl
    if transform:
        spec["transform"] = transform
    return {"apiVersion": "fnhub/v1", "kind": "FeatureSet",
            "metadata": {"name": name, "namespace": namespace, "version": version,
                         "description": f"{name}: per-driver statistics"},
            "spec": spec}


def write_featureset(root: Path, name: str = "driver-stats", version: str = "1.0.0",
                     **kwargs: Any) -> Path:
    """A feature set folder `root/<name>-<version>` holding its featureset.yaml and a README."""
    folder = root / f"{name}-{version}"
    folder.mkdir(parents=True, exist_ok=True)
    data = featureset_dict(name, version, **kwargs)
    (folder / "featureset.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (folder / "README.md").write_text(f"# {name}\n")
    return folder
