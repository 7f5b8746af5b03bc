"""The local engine: parallel steps, the step cache, failure isolation, the run record."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime
from pathlib import Path

import pytest

import fnhub
from fnhub.core.errors import DigestMismatch, InvalidInput, MissingRequirements, RunError
from fnhub.pipeline import Pipeline, PipelineRun
from tests.pipeline.functions import make_function


def statuses(run: PipelineRun) -> dict[str, str]:
    return {name: step.status for name, step in run.steps.items()}


def interval(run: PipelineRun, step: str) -> tuple[datetime, datetime]:
    record = run.steps[step]
    assert record.started_at and record.finished_at
    return datetime.fromisoformat(record.started_at), datetime.fromisoformat(record.finished_at)


def branches(fns: dict[str, Path]) -> Pipeline:
    """data -> scaled -> (total into) sum; nap on its own."""
    with Pipeline("branches") as p:
        n = p.param("n", type="int", default=3)
        factor = p.param("factor", type="float", default=2.0)
        sleep = p.param("sleep", type="float", default=0.0)
        data = p.add("data", str(fns["numbers"]), n=n, sleep=sleep)
        scaled = p.add("scaled", str(fns["scale"]), table=data.outputs["table"], factor=factor)
        p.add("sum", str(fns["add"]), a=scaled.outputs["total"], b=data.outputs["count"])
        p.add("nap", str(fns["nap"]), seconds=0.0, tag="quiet")
    return p


def test_run_gives_outputs_and_a_run_record(fns: dict[str, Path]) -> None:
    run = branches(fns).run(n=4)
    assert run.status == "succeeded"
    assert run.outputs["data"]["count"] == 4
    assert run.outputs["scaled"]["total"] == 2.0 * (1 + 2 + 3 + 4)
    assert run.outputs["sum"]["sum"] == 24.0
    assert run.outputs["nap"]["tag"] == "QUIET"
    table = run.outputs["scaled"]["scaled"]
    assert isinstance(table, Path) and table.is_relative_to(run.run_dir / "scaled" / "outputs")
    assert table.read_text().splitlines() == ["value", "2.0", "4.0", "6.0", "8.0"]
    home = Path(os.environ["FNHUB_HOME"])
    assert run.run_dir.parent == home / "runs"  # SDK runs live under FNHUB_HOME

    record = json.loads((run.run_dir / "run.json").read_text())
    assert record["status"] == "succeeded" and record["params"] == {
        "n": 4, "factor": 2.0, "sleep": 0.0}
    step = record["steps"]["scaled"]
    assert step["status"] == "succeeded" and step["function"] == "tests/scale@1.0.0"
    assert step["inputs"] == {"table": str(run.outputs["data"]["table"]), "factor": 2.0}
    assert step["outputs"]["total"] == 20.0 and step["duration_s"] >= 0
    assert Path(step["log"]) == run.run_dir / "scaled" / "log.txt"
    assert "wrote 4 numbers" in (run.run_dir / "data" / "log.txt").read_text()


def test_independent_steps_run_in_parallel_in_a_bounded_pool(fns: dict[str, Path]) -> None:
    with Pipeline("naps") as p:
        p.add("a", str(fns["nap"]), seconds=0.8, tag="a")
        p.add("b", str(fns["nap"]), seconds=0.8, tag="b")
    started = time.monotonic()
    run = p.run()
    parallel = time.monotonic() - started
    (a_start, a_end), (b_start, b_end) = interval(run, "a"), interval(run, "b")
    assert a_start < b_end and b_start < a_end  # they overlapped
    assert parallel < 1.5

    started = time.monotonic()
    run = p.run(workers=1, cache=False)
    assert time.monotonic() - started >= 1.6
    (a_start, a_end), (b_start, b_end) = interval(run, "a"), interval(run, "b")
    assert a_end <= b_start or b_end <= a_start  # one at a time


def test_second_run_is_cached_and_a_changed_param_reruns_only_what_it_feeds(
        fns: dict[str, Path]) -> None:
    p = branches(fns)
    started = time.monotonic()
    first = p.run(sleep=0.5)
    first_time = time.monotonic() - started
    assert set(statuses(first).values()) == {"succeeded"}

    started = time.monotonic()
    second = p.run(sleep=0.5)
    assert time.monotonic() - started < first_time / 3
    assert set(statuses(second).values()) == {"cached"}
    assert second.outputs["sum"] == first.outputs["sum"]
    cached_table = second.outputs["scaled"]["scaled"]
    assert cached_table.is_relative_to(second.run_dir)  # linked into the new run
    assert cached_table.read_text() == first.outputs["scaled"]["scaled"].read_text()

    third = p.run(sleep=0.5, factor=3)
    assert statuses(third) == {"data": "cached", "scaled": "succeeded", "sum": "succeeded",
                               "nap": "cached"}
    assert third.outputs["scaled"]["total"] == 18.0

    # `sleep` changes how data runs, not what it writes: downstream steps stay cached
    fourth = p.run(sleep=0.1, factor=3)
    assert statuses(fourth) == {"data": "succeeded", "scaled": "cached", "sum": "cached",
                                "nap": "cached"}

    forced = p.run(sleep=0.1, factor=3, cache=False)
    assert set(statuses(forced).values()) == {"succeeded"}


def test_cache_outlives_run_folders_and_refuses_modified_entries(fns: dict[str, Path]) -> None:
    p = branches(fns)
    first = p.run()
    for path in sorted(first.run_dir.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    second = p.run()
    assert set(statuses(second).values()) == {"cached"}

    entry = json.loads(next((Path(os.environ["FNHUB_HOME"]) / "cache" / "steps").glob(
        f"{second.steps['data'].cache_key}/entry.json")).read_text())
    cached = Path(os.environ["FNHUB_HOME"]) / "cache" / "steps" / entry["key"] / \
        entry["outputs"]["table"]["path"]
    cached.unlink()
    cached.write_text("value\n100\n")
    third = p.run()
    assert statuses(third) == {"data": "succeeded", "scaled": "cached", "sum": "cached",
                               "nap": "cached"}
    assert third.outputs["data"]["table"].read_text() == "value\n1\n2\n3\n"


def test_changed_input_file_reruns_the_step(fns: dict[str, Path], tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_text("value\n1\n")
    with Pipeline("files") as p:
        p.add("scaled", str(fns["scale"]), table=str(data))
    assert p.run().outputs["scaled"]["total"] == 1.0
    assert statuses(p.run()) == {"scaled": "cached"}
    data.write_text("value\n5\n")
    rerun = p.run()
    assert statuses(rerun) == {"scaled": "succeeded"} and rerun.outputs["scaled"]["total"] == 5.0


def test_a_failing_step_stops_downstream_and_lets_independent_steps_finish(
        fns: dict[str, Path]) -> None:
    with Pipeline("failing") as p:
        data = p.add("data", str(fns["numbers"]), n=2)
        broken = p.add("broken", str(fns["boom"]), table=data.outputs["table"])
        p.add("after", str(fns["add"]), a=broken.outputs["never"], b=1)
        p.add("other", str(fns["nap"]), seconds=0.3, tag="other")
    with pytest.raises(RunError) as info:
        p.run()
    message = info.value.message
    assert "step 'broken' failed: ValueError: no good rows in numbers.csv" in message
    assert "about to fail" in message and "log tail" in message  # the log's last lines
    assert "skipped (downstream of a failure): after" in message
    assert info.value.hint and "run.json" in info.value.hint

    run = p.run(check=False)
    assert run.status == "failed"
    assert statuses(run) == {"data": "cached", "broken": "failed", "after": "skipped",
                             "other": "cached"}
    assert run.outputs == {"data": run.outputs["data"], "other": {"tag": "OTHER"}}
    record = json.loads((run.run_dir / "run.json").read_text())
    assert record["status"] == "failed"
    assert record["steps"]["after"]["error"] == "not run: step 'broken' failed"
    assert "about to fail" in record["steps"]["broken"]["log_tail"]
    assert not (run.run_dir / "after" / "log.txt").exists()


def test_run_time_checks_happen_before_any_step(fns: dict[str, Path], tmp_path: Path) -> None:
    p = branches(fns)
    runs = Path(os.environ["FNHUB_HOME"]) / "runs"
    for kwargs, error, message in [
        ({"n": "many"}, InvalidInput, "parameter 'n' expects int, got 'many'"),
        ({"factr": 2}, InvalidInput, "has no parameter 'factr' (did you mean 'factor'?)"),
        ({"engine": "spark"}, InvalidInput, "unknown engine 'spark'"),
        ({"env": "conda"}, InvalidInput, "unknown environment 'conda'"),
        ({"workers": 0}, InvalidInput, "workers must be at least 1"),
        ({"address": "tcp://x:1"}, InvalidInput, "an address is for the dask engine"),
        ({"locked": True}, InvalidInput, "pipeline 'branches' has no lock file"),
    ]:
        with pytest.raises(error, match=re.escape(message)):
            p.run(**kwargs)
    with Pipeline("required") as q:
        q.add("scaled", str(fns["scale"]), table=q.param("table", type="dataset"))
    with pytest.raises(InvalidInput, match=r"missing pipeline parameter 'table' \(dataset\)"):
        q.run()
    with pytest.raises(InvalidInput, match=r"parameter 'table': .*nope.csv does not exist"):
        q.run(table=str(tmp_path / "nope.csv"))
    with Pipeline("const") as r:
        r.add("scaled", str(fns["scale"]), table=str(tmp_path / "missing.csv"))
    with pytest.raises(InvalidInput, match=r"step 'scaled' input 'table': .*missing.csv does not"):
        r.run()

    (fns["nap"] / "main.py").write_text("def main(seconds, tag):\n    return tag\n")
    with pytest.raises(DigestMismatch, match=r"step 'nap': the files of tests/nap@1\.0\.0 changed"):
        p.run()
    assert not runs.exists()


def test_current_env_checks_requirements_per_step(fns: dict[str, Path], tmp_path: Path) -> None:
    needy = make_function(tmp_path / "needy", "needy", "def main():\n    return 1\n",
                          inputs=[], outputs=[{"name": "one", "type": "int"}],
                          requirements=["surely-not-installed-pkg>=1"])
    with Pipeline("needs") as p:
        p.add("needy", str(needy))
    with pytest.raises(MissingRequirements,
                       match=r"step 'needy': tests/needy needs .*surely-not-installed-pkg"):
        p.run()


def test_venv_env_runs_each_step_in_its_venv(fns: dict[str, Path], tmp_path: Path) -> None:
    which = make_function(tmp_path / "which", "which",
                          "import sys\n\ndef main():\n    return sys.prefix\n",
                          inputs=[], outputs=[{"name": "prefix", "type": "str"}])
    with Pipeline("venvs") as p:
        p.add("which", str(which))
        p.add("data", fnhub.import_function(str(fns["numbers"])), n=2)
    run = p.run(env="venv")
    prefix = Path(run.outputs["which"]["prefix"])
    assert prefix.parent == Path(os.environ["FNHUB_HOME"]) / "venvs"
    assert run.outputs["data"]["count"] == 2


def test_events_report_each_step_change(fns: dict[str, Path]) -> None:
    seen: list[tuple[str, str]] = []
    branches(fns).run(on_event=lambda run, step: seen.append((step.name, step.status)))
    for step in ("data", "scaled", "sum", "nap"):
        changes = [status for name, status in seen if name == step]
        assert changes[-2:] == ["running", "succeeded"] and changes[0] == "queued"
    assert seen.index(("data", "succeeded")) < seen.index(("scaled", "queued"))


def test_artifact_params_and_dir_outputs(tmp_path: Path) -> None:
    folder_fn = make_function(tmp_path / "split", "split", """\
        import os
        from pathlib import Path


        def main(table):
            out = Path(os.environ["FNHUB_OUTPUT_DIR"]) / "parts"
            (out / "sub").mkdir(parents=True)
            for i, line in enumerate(table.read_text().splitlines()):
                (out / "sub" / f"{i}.txt").write_text(line)
            return out
    """, inputs=[{"name": "table", "type": "dataset"}], outputs=[{"name": "parts", "type": "dir"}])
    count_fn = make_function(tmp_path / "count", "count", """\
        def main(parts):
            return len(list(parts.rglob("*.txt")))
    """, inputs=[{"name": "parts", "type": "dir"}], outputs=[{"name": "n", "type": "int"}])
    data = tmp_path / "in.csv"
    data.write_text("a\nb\nc\n")
    with Pipeline("dirs") as p:
        split = p.add("split", str(folder_fn), table=p.param("table", type="dataset"))
        p.add("count", str(count_fn), parts=split.outputs["parts"])
    assert p.run(table=str(data)).outputs["count"]["n"] == 3
    cached = p.run(table=str(data))
    assert statuses(cached) == {"split": "cached", "count": "cached"}
    assert (cached.outputs["split"]["parts"] / "sub" / "2.txt").read_text() == "c"


def test_engine_and_env_objects_carry_their_options(fns: dict[str, Path], tmp_path: Path) -> None:
    """`engine=`/`env=` take objects as well as names; options go with the object, not beside
    it; a pipeline's steps do not run in containers (an export does that)."""
    p = branches(fns)
    run = p.run(engine=fnhub.LocalEngine(workers=1), env=fnhub.VenvEnv(tmp_path / "venvs"))
    assert run.status == "succeeded" and run.engine == "local"
    assert [d for d in (tmp_path / "venvs").iterdir() if d.is_dir()]
    for kwargs, message in [
        ({"engine": fnhub.LocalEngine(), "workers": 3},
         "give workers to the local engine object, not beside it"),
        ({"engine": "local", "storage": "s3://bucket"}, "storage (s3://bucket) is for the dask"),
        ({"env": "container"}, "not in containers"),
    ]:
        with pytest.raises(InvalidInput, match=re.escape(message)):
            p.run(**kwargs)
    with pytest.raises(InvalidInput, match="workers must be at least 1, got 0"):
        fnhub.DaskEngine(workers=0)
