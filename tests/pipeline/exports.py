"""What the export tests share: function folders with a recorded image, and a chain of catalog
functions whose readers choose by the file's suffix (`.csv`, `.parquet`), as workflow engines
must run them with artifact paths named after the artifact (`.../outputs/dataset`)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import yaml

from fnhub.build import labels
from fnhub.core.manifest import load_manifest
from fnhub.pipeline import Pipeline

IMAGE_DIGEST = "sha256:" + "ab" * 32
CATALOG = Path(__file__).resolve().parents[2] / "catalog"
CHAIN = {"data": "load-dataset", "split": "split-dataset", "describe": "describe",
         "train": "train", "evaluate": "evaluate"}


def record_image(folder: Path, **resources: Any) -> Path:
    """Give a function folder a built image (as `hub build` records it) and resources."""
    manifest = yaml.safe_load((folder / "function.yaml").read_text())
    manifest["spec"]["image"] = {**manifest["spec"].get("image", {}),
                                 "ref": f"registry.example/tests/{folder.name}:1.0.0",
                                 "digest": IMAGE_DIGEST}
    manifest["spec"]["resources"] = resources
    (folder / "function.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return folder


def image_of(name: str) -> str:
    return f"registry.example/tests/{name}:1.0.0@{IMAGE_DIGEST}"


def built_function_dir(folder: Path) -> str:
    """Where `hub build` puts this function in its image: the label it writes."""
    return labels(load_manifest(folder), IMAGE_DIGEST)["io.fnhub.function-dir"]


def imaged_catalog(root: Path) -> dict[str, Path]:
    """{step: a copy of its catalog function, with a recorded image} for `catalog_chain`."""
    folders = {}
    for step, name in CHAIN.items():
        copy = root / name
        if not copy.exists():
            shutil.copytree(CATALOG / name, copy,
                            ignore=shutil.ignore_patterns("tests", "__pycache__"))
            record_image(copy)
        folders[step] = copy
    return folders


def catalog_chain(folders: dict[str, Path]) -> Pipeline:
    """load-dataset -> split-dataset -> train -> evaluate, and describe of the loaded table."""
    with Pipeline("catalog_chain") as p:
        fmt = p.param("format", type="str", default="csv")
        data = p.add("data", folders["data"], name="iris", format=fmt)
        split = p.add("split", folders["split"], table=data.outputs["dataset"], seed=7)
        p.add("describe", folders["describe"], table=data.outputs["dataset"],
              label_column="target", bins=5)
        train = p.add("train", folders["train"], dataset=split.outputs["train"], cv=2,
                      params={"n_estimators": 10})
        p.add("evaluate", folders["evaluate"], model=train.outputs["model"],
              dataset=split.outputs["test"])
    return p


def demo(fns: dict[str, Path]) -> Pipeline:
    """The export tests' pipeline: parameters of each kind, wires, a pipeline-level artifact."""
    with Pipeline("demo_export") as p:
        n = p.param("n", type="int", default=3)
        factor = p.param("factor", type="float")
        tag = p.param("tag", type="str", default=None)
        source = p.param("source", type="dataset")
        data = p.add("data", fns["numbers"], n=n, start=10)
        scaled = p.add("scaled", fns["scale"], table=data.outputs["table"], factor=factor)
        p.add("sum", fns["add"], a=scaled.outputs["total"], b=data.outputs["count"])
        p.add("rescaled", fns["scale"], table=source)
        p.add("nap_time", fns["nap"], seconds=0, tag=tag)  # its output is named like an input
    return p


def published(pipeline: Pipeline, host: str) -> Pipeline:
    """`pipeline` as if its steps had been resolved from the hub at `host`: each pinned to
    `hub://HOST/NS/NAME:VERSION@DIGEST`, as `Pipeline.from_yaml` pins hub steps."""
    steps = pipeline.graph.steps
    for name, node in steps.items():
        fn = node.function
        pinned = f"hub://{host}/{fn.ref}:{fn.version}@{fn.digest}"
        steps[name] = dataclasses.replace(node, function=dataclasses.replace(fn, pinned=pinned))
    return pipeline


def bootstrapped(fns: dict[str, Path], host: str = "127.0.0.1:8080") -> Pipeline:
    """numbers -> scale, both from the hub at `host`, neither with an image of its own."""
    with Pipeline("from_hub") as p:
        data = p.add("data", fns["numbers"], n=2)
        p.add("scaled", fns["scale"], table=data.outputs["table"], factor=2)
    return published(p, host)
