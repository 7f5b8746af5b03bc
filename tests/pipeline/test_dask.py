"""The Dask engine on a real LocalCluster of two worker processes gives the local outputs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from fnhub.pipeline import Pipeline

pytestmark = pytest.mark.slow  # a LocalCluster of worker processes

pytest.importorskip("distributed")


def test_dask_engine_matches_the_local_engine(fns: dict[str, Path]) -> None:
    with Pipeline("on-dask") as p:
        data = p.add("data", str(fns["numbers"]), n=p.param("n", type="int", default=4))
        scaled = p.add("scaled", str(fns["scale"]), table=data.outputs["table"], factor=1.5)
        p.add("sum", str(fns["add"]), a=scaled.outputs["total"], b=data.outputs["count"])
        broken = p.add("broken", str(fns["boom"]), table=data.outputs["table"])
        p.add("after", str(fns["add"]), a=broken.outputs["never"], b=1)
        p.add("a", str(fns["nap"]), seconds=1.0, tag="a")
        p.add("b", str(fns["nap"]), seconds=1.0, tag="b")
    local = p.run(check=False)
    remote = p.run(engine="dask", workers=2, cache=False, check=False)
    assert remote.engine == "dask"
    expected = {"data": "succeeded", "scaled": "succeeded", "sum": "succeeded",
                "broken": "failed", "after": "skipped", "a": "succeeded", "b": "succeeded"}
    assert {name: s.status for name, s in local.steps.items()} == expected
    assert {name: s.status for name, s in remote.steps.items()} == expected
    assert remote.error and "step 'broken' failed: ValueError" in remote.error
    assert "about to fail" in remote.error  # the log tail came back from the worker

    assert remote.outputs.keys() == local.outputs.keys()
    for step, outputs in local.outputs.items():
        for name, value in outputs.items():
            other = remote.outputs[step][name]
            if isinstance(value, Path):
                assert other.is_relative_to(remote.run_dir)
                assert other.read_bytes() == value.read_bytes()
            else:
                assert other == value
    a, b = remote.steps["a"], remote.steps["b"]
    assert a.started_at and a.finished_at and b.started_at and b.finished_at
    assert datetime.fromisoformat(a.started_at) < datetime.fromisoformat(b.finished_at)
    assert datetime.fromisoformat(b.started_at) < datetime.fromisoformat(a.finished_at)
