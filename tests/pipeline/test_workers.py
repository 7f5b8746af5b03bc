"""The local engine's warm worker processes: what a step sees, what it leaves, how it fails."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from fnhub.pipeline import Pipeline, PipelineRun
from fnhub.pipeline.workers import WorkerPool, describe_exit
from tests.pipeline.functions import make_function

# prints through Python (both streams), the C library and a child process, then reports
# where it ran; the sleeps make two copies overlap
REPORT = """\
    import ctypes
    import os
    import subprocess
    import sys
    import time

    SEEN = []  # module state: a fresh module per call starts empty


    def main(tag, pause):
        SEEN.append(tag)
        leaked = os.environ.get("FNHUB_TEST_LEAK")
        os.environ["FNHUB_TEST_LEAK"] = tag
        for i in range(3):
            print(f"{tag} out {i}", flush=True)
            print(f"{tag} err {i}", file=sys.stderr, flush=True)
            time.sleep(pause)
        ctypes.CDLL(None).printf(f"{tag} from C\\n".encode())  # stays in C's buffer
        subprocess.run(["echo", f"{tag} from a child"], check=True)
        return {"pid": os.getpid(), "output_dir": os.environ["FNHUB_OUTPUT_DIR"],
                "cwd": os.getcwd(), "leaked": leaked or "", "seen": len(SEEN)}
"""

CRASH = """\
    import ctypes
    import os


    def main(how):
        print("going down", flush=True)
        if how == "segfault":
            ctypes.string_at(0)
        os._exit(3)
"""

THREAD = """\
    import os
    import threading
    import time


    def main():
        threading.Thread(target=time.sleep, args=(60,)).start()  # never joined
        return os.getpid()
"""

REPORT_PORTS = {
    "inputs": [{"name": "tag", "type": "str"}, {"name": "pause", "type": "float"}],
    "outputs": [{"name": "pid", "type": "int"}, {"name": "output_dir", "type": "str"},
                {"name": "cwd", "type": "str"}, {"name": "leaked", "type": "str"},
                {"name": "seen", "type": "int"}],
}


def statuses(run: PipelineRun) -> dict[str, str]:
    return {name: step.status for name, step in run.steps.items()}


def test_steps_in_warm_workers_keep_their_logs_output_dirs_and_env_apart(
        tmp_path: Path) -> None:
    report = make_function(tmp_path / "report", "report", REPORT, **REPORT_PORTS)
    with Pipeline("apart") as p:
        p.add("left", str(report), tag="left", pause=0.2)
        p.add("right", str(report), tag="right", pause=0.2)
    run = p.run(workers=2)
    (l_start, l_end), (r_start, r_end) = (
        (datetime.fromisoformat(run.steps[s].started_at or ""),
         datetime.fromisoformat(run.steps[s].finished_at or "")) for s in ("left", "right"))
    assert l_start < r_end and r_start < l_end  # they ran at the same time
    pids = set()
    for tag, other in (("left", "right"), ("right", "left")):
        out = run.outputs[tag]
        output_dir = run.run_dir / tag / "outputs"
        assert out["output_dir"] == out["cwd"] == str(output_dir)
        assert out["pid"] != os.getpid() and out["leaked"] == "" and out["seen"] == 1
        pids.add(out["pid"])
        log = (run.run_dir / tag / "log.txt").read_text().splitlines()
        assert sorted(log) == sorted([*(f"{tag} {s} {i}" for s in ("out", "err")
                                        for i in range(3)),
                                      f"{tag} from C", f"{tag} from a child"])
        assert not any(other in line for line in log)
    assert len(pids) == 2  # two workers, neither of them this process

    again = p.run(workers=2, cache=False)  # the same warm workers, fresh modules and env
    assert {again.outputs[t]["pid"] for t in ("left", "right")} == pids
    for tag in ("left", "right"):
        assert again.outputs[tag]["leaked"] == "" and again.outputs[tag]["seen"] == 1
    assert "FNHUB_TEST_LEAK" not in os.environ


def test_a_changed_function_folder_never_runs_a_stale_module(tmp_path: Path) -> None:
    def versioned(name: str, value: str) -> Path:
        folder = make_function(tmp_path / name, name,
                               "from helper import VALUE\n\ndef main():\n    return VALUE\n",
                               inputs=[], outputs=[{"name": "value", "type": "str"}])
        (folder / "helper.py").write_text(f"VALUE = {value!r}\n")
        return folder

    first, second = versioned("first", "one"), versioned("second", "two")

    def run_both() -> dict[str, str]:
        with Pipeline("helpers") as p:  # built again: the folders' digests are read anew
            p.add("a", str(first))
            p.add("b", str(second))
        run = p.run(workers=1)  # one worker runs both: each imports its own `helper`
        return {step: run.outputs[step]["value"] for step in ("a", "b")}

    assert run_both() == {"a": "one", "b": "two"}
    (first / "helper.py").write_text("VALUE = 'changed'\n")
    assert run_both() == {"a": "changed", "b": "two"}


@pytest.mark.parametrize(("how", "status", "trace"), [
    ("exit", "exited with code 3", "going down"),
    ("segfault", "killed by SIGSEGV", "Fatal Python error: Segmentation fault"),
])
def test_a_crashing_worker_fails_its_step_and_the_run_goes_on(
        tmp_path: Path, fns: dict[str, Path], how: str, status: str, trace: str) -> None:
    crash = make_function(tmp_path / "crash", "crash", CRASH,
                          inputs=[{"name": "how", "type": "str"}],
                          outputs=[{"name": "never", "type": "float"}])
    with Pipeline("crashing") as p:
        broken = p.add("broken", str(crash), how=how)
        p.add("after", str(fns["add"]), a=broken.outputs["never"], b=1)
        p.add("other", str(fns["nap"]), seconds=0.5, tag="other")
    started = time.monotonic()
    run = p.run(check=False, workers=2)
    assert time.monotonic() - started < 30
    assert statuses(run) == {"broken": "failed", "after": "skipped", "other": "succeeded"}
    error = run.steps["broken"].error or ""
    assert error.startswith("the worker process running the function (pid ")
    assert error.endswith(f"died: {status}")
    assert run.error and f"step 'broken' failed: {error}" in run.error
    assert trace in run.steps["broken"].log_tail
    record = json.loads((run.run_dir / "run.json").read_text())
    assert record["steps"]["broken"]["error"] == error

    rerun = p.run(check=False, workers=2)  # a new worker takes the dead one's place
    assert statuses(rerun) == {"broken": "failed", "after": "skipped", "other": "cached"}


def test_a_worker_whose_function_leaves_a_thread_running_is_retired(tmp_path: Path) -> None:
    spawner = make_function(tmp_path / "spawner", "spawner", THREAD, inputs=[],
                            outputs=[{"name": "pid", "type": "int"}])
    with Pipeline("threads") as p:
        p.add("spawn", str(spawner))
    started = time.monotonic()
    first = p.run(workers=1).outputs["spawn"]["pid"]
    second = p.run(workers=1, cache=False).outputs["spawn"]["pid"]
    assert time.monotonic() - started < 30  # nobody waited for the sleeping thread
    assert first != second  # the thread's worker did not run another step
    with pytest.raises(ProcessLookupError):
        for _ in range(100):  # it is gone, with its thread
            os.kill(first, 0)
            time.sleep(0.05)


INTERRUPTED = """\
import sys

from fnhub.pipeline import Pipeline

with Pipeline("interrupted") as p:
    p.add("a", sys.argv[1], seconds=60, tag="a")
    p.add("b", sys.argv[1], seconds=60, tag="b")
p.run()
"""


@pytest.mark.slow
def test_an_interrupted_run_kills_its_running_steps(tmp_path: Path, fns: dict[str, Path]) -> None:
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPTED)
    engine = subprocess.Popen([sys.executable, str(script), str(fns["nap"])],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    runs = Path(os.environ["FNHUB_HOME"]) / "runs"
    try:
        # A step is marked running when it is handed to the pool, a moment before its worker
        # process exists: wait for both, as a loaded machine can take seconds to fork.
        deadline = time.monotonic() + 60
        record: dict = {}
        workers: set[int] = set()
        while time.monotonic() < deadline and engine.poll() is None and ({
                s["status"] for s in record.get("steps", {}).values()} != {"running"}
                or len(workers) < 2):
            time.sleep(0.1)
            for path in runs.glob("*-interrupted-*/run.json"):
                record = json.loads(path.read_text())
            # -ww: with COLUMNS set (CI sets it) ps cuts the command line short of the name
            workers = {int(line.split()[0]) for line in subprocess.run(  # ps exits 1 on none
                ["ps", "-ww", "-o", "pid=,args=", "--ppid", str(engine.pid)],
                capture_output=True, text=True, check=False).stdout.splitlines()
                if "workers.py" in line}
        assert engine.poll() is None, engine.communicate()[0]
        assert len(workers) == 2
        os.kill(engine.pid, signal.SIGINT)  # the engine only, as Jupyter's interrupt does
        output, _ = engine.communicate(timeout=20)  # not the steps' 60 seconds
    finally:
        engine.kill()
        engine.wait()
    assert "KeyboardInterrupt" in output
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    record = json.loads(next(runs.glob("*-interrupted-*/run.json")).read_text())
    assert record["status"] == "failed"
    assert {s["error"] for s in record["steps"].values()} == {"interrupted"}


def test_a_pool_answers_like_the_runtime_and_stops_its_workers(
        tmp_path: Path, fns: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)  # C's stdout buffers, as usual
    pool = WorkerPool()
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    request = {"folder": str(fns["add"]), "entrypoint": "main.py:main",
               "inputs": {"a": 1.5, "b": 2}, "artifacts": [],
               "outputs": [{"name": "sum", "type": "float"}], "output_dir": str(output_dir)}
    assert pool.run(request, str(tmp_path / "log.txt")) == {
        "ok": True, "outputs": {"sum": {"value": 3.5}}}
    failed = pool.run({**request, "inputs": {"a": 1}}, str(tmp_path / "log.txt"))
    assert failed["ok"] is False
    assert failed["error"] == "TypeError: main() missing 1 required positional argument: 'b'"
    assert "Traceback" in (tmp_path / "log.txt").read_text()
    printer = make_function(tmp_path / "printer", "printer", """\
        import ctypes


        def main():
            ctypes.CDLL(None).printf(b"from C, no newline")
    """, inputs=[], outputs=[])
    answer = pool.run({**request, "folder": str(printer), "inputs": {}, "outputs": []},
                      str(tmp_path / "c.txt"))
    assert answer == {"ok": True, "outputs": {}}
    assert (tmp_path / "c.txt").read_text() == "from C, no newline"  # flushed after the call
    [worker] = pool._idle
    pool.close()
    assert worker.proc.poll() == 0  # it saw its socket close and exited cleanly
    assert describe_exit(-9) == "killed by SIGKILL" and describe_exit(2) == "exited with code 2"


def test_the_run_record_shows_a_running_step_while_it_runs(fns: dict[str, Path]) -> None:
    with Pipeline("slow") as p:
        p.add("nap", str(fns["nap"]), seconds=2.0, tag="slow")
    runs = Path(os.environ["FNHUB_HOME"]) / "runs"
    seen: list[str] = []

    def watch() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "running" not in seen:
            for record in runs.glob("*-slow-*/run.json"):
                seen.append(json.loads(record.read_text())["steps"]["nap"]["status"])
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    run = p.run()
    watcher.join()
    assert "running" in seen  # written while the step ran, not only at the end
    assert json.loads((run.run_dir / "run.json").read_text())["status"] == "succeeded"
