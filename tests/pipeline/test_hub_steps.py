"""Hub steps in a pipeline: resolved (verified) to an exact version, locked, and run as pinned."""

from __future__ import annotations

from pathlib import Path

import pytest

import fnhub
from fnhub.core.errors import Conflict
from fnhub.pipeline import Pipeline, PipelineLock
from tests.helpers import CLI, start_hub, write_function

pytestmark = pytest.mark.slow

PIPELINE = """\
apiVersion: fnhub/v1
kind: Pipeline
metadata: {name: from-hub}
spec:
  steps:
    - {name: scaled, uses: "hub://bob/scale:^1", with: {table: data.csv}}
"""


def test_hub_steps_lock_to_exact_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = start_hub(tmp_path / "hub" / "data")
    try:
        admin = CLI(tmp_path / "admin", hub.url, hub.admin_token)
        token = admin.json("tokens", "create", "bob-laptop", "--scope", "publish:*",
                           "--user", "bob")["token"]
        bob = CLI(tmp_path / "bob", hub.url, token)
        bob.json("keys", "generate", "--name", "laptop")
        bob.json("keys", "register", "laptop", "--namespace", "bob")
        fn = write_function(tmp_path / "scale", name="scale", namespace="bob", version="1.0.0")
        digest = bob.json("publish", str(fn))["package"]["digest"]
        for key, value in bob.env.items():
            if key.startswith("FNHUB_"):
                monkeypatch.setenv(key, value)
        project = tmp_path / "project"
        project.mkdir()
        (project / "data.csv").write_text("value\n1\n2\n")
        path = project / "pipeline.yaml"
        path.write_text(PIPELINE)

        first = Pipeline.from_yaml(path)
        node = first.graph.steps["scaled"].function
        assert (node.version, node.digest) == ("1.0.0", digest)
        assert node.pinned == f"hub://{hub.url.split('//')[1]}/bob/scale:1.0.0@{digest}"
        assert first.run().outputs["scaled"]["total"] == 3.0  # and writes pipeline.lock
        assert PipelineLock.read(project / "pipeline.lock").steps["scaled"].pinned == node.pinned

        write_function(fn, name="scale", namespace="bob", version="1.1.0", factor_default=3.0)
        bob.ok("publish", str(fn))

        pinned = Pipeline.from_yaml(path, locked=True)
        assert pinned.graph.steps["scaled"].function.version == "1.0.0"
        assert pinned.run(locked=True).steps["scaled"].status == "cached"

        newest = Pipeline.from_yaml(path)
        assert newest.graph.steps["scaled"].function.version == "1.1.0"
        with pytest.raises(Conflict, match=r"step 'scaled' .* is now bob/scale@1\.1\.0"):
            newest.check_lock()
        run = newest.run()  # without --locked: runs 1.1.0 and rewrites the lock
        assert run.steps["scaled"].status == "succeeded"
        assert run.outputs["scaled"]["total"] == 9.0
        assert PipelineLock.read(project / "pipeline.lock").steps["scaled"].version == "1.1.0"

        with Pipeline("python-form") as p:
            p.add("scaled", fnhub.import_function("hub://bob/scale:1.0.0"),
                  table=str(project / "data.csv"))
        assert p.graph.steps == pinned.graph.steps  # same function digest, same wiring
        assert p.graph.steps["scaled"].function.pinned == node.pinned
    finally:
        hub.stop()
