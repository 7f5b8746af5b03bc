"""Per-step overhead of fnhub's local pipeline engine against `kfp.local`, on trivial steps.

    .venv/bin/python bench/pipeline_overhead.py [--steps 10] [--repeat 3]

Both engines run the same pipeline in this one process, turn about: a chain of N steps, the
first adding 1 to a `start` parameter and each next one adding 1 to what the previous returned,
so a step does no work and a run's wall time is all overhead. Every run (warm-up and measured)
gets a new `start`, so every step runs. Per-step overhead is a run's wall time divided by N (the
median of `--repeat` runs, after one warm-up run of each, which is also printed); the CPU time it
took (this process and all its child processes, the warm workers included) is printed beside
it, as a check that holds up on a busy machine.

- fnhub: `Pipeline.run(start=...)` with the local engine and its defaults, exactly as a user
  runs it on new data: the checks before the run, each step looked up in the step cache (a
  miss), run in a warm worker process through `fnhub.runtime`, and stored in the cache, and the
  run record written. The warm-up run starts the worker (an interpreter start, once per
  process).
- kfp.local: its fastest fair configuration, `SubprocessRunner(use_venv=False)` (no venv, no
  pip install) with components built by `@dsl.component(install_kfp_package=False)`, and its
  cache off (the default).

The target (issue #4, acceptance 5) is at least 10x less overhead per step than kfp.local.
Needs the `fnhub[kfp]` extra, and psutil (with `fnhub[dask]`) for the CPU figures.
"""

# No `from __future__ import annotations`: kfp reads the components' annotations as types.
import argparse
import contextlib
import itertools
import os
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

TARGET_RATIO = 10.0

FUNCTION_YAML = """\
apiVersion: fnhub/v1
kind: Function
metadata: {name: increment, namespace: bench, version: 1.0.0}
spec:
  entrypoint: increment.py:increment
  inputs: [{name: x, type: int}]
  outputs: [{name: y, type: int}]
"""


Chain = Callable[[int], int]  # a run of the chain from `start`; returns the last output


def fnhub_chain(root: Path, steps: int) -> Chain:
    """A run of the chain with fnhub's local engine."""
    from fnhub.pipeline import Pipeline

    folder = root / "increment"
    folder.mkdir()
    (folder / "function.yaml").write_text(FUNCTION_YAML)
    (folder / "increment.py").write_text("def increment(x: int) -> int:\n    return x + 1\n")
    with Pipeline("chain") as p:
        previous = p.add("s0", folder, x=p.param("start", type="int"))
        for i in range(1, steps):
            previous = p.add(f"s{i}", folder, x=previous.outputs["y"])

    def run(start: int) -> int:
        result = p.run(start=start)
        return result.outputs[f"s{steps - 1}"]["y"]

    return run


def kfp_chain(root: Path, steps: int) -> Chain:
    """A run of the chain with kfp.local."""
    from kfp import dsl, local

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def increment(x: int) -> int:
        return x + 1

    @dsl.pipeline(name="chain")
    def chain(start: int) -> int:
        task = increment(x=start)
        for _ in range(1, steps):
            task = increment(x=task.output)
        return task.output

    local.init(runner=local.SubprocessRunner(use_venv=False),
               pipeline_root=str(root / "kfp-outputs"))

    def run(start: int) -> int:
        return chain(start=start).output

    return run


def _cpu_seconds() -> float:
    """CPU time of this process, its live child processes and the ones that have finished."""
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:4])  # user, system, children_user, children_system
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):  # it ended meanwhile: counted once reaped
            total += sum(child.cpu_times()[:2])
    return total


def per_step(run: Chain, start: int, steps: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) per step of one run of the chain."""
    cpu, started = _cpu_seconds(), time.perf_counter()
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # kfp echoes logs
        last = run(start)
    elapsed, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    if last != start + steps:
        raise SystemExit(f"the chain returned {last}, expected {start + steps}")
    return elapsed / steps, cpu / steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="steps in the chain")
    parser.add_argument("--repeat", type=int, default=3, help="measured runs of each engine")
    args = parser.parse_args()
    try:
        import kfp
        import psutil  # noqa: F401 (for _cpu_seconds)
    except ImportError as exc:
        print(f'{exc.name} is not installed: pip install "fnhub[kfp,dask]"', file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory(prefix="fnhub-bench-") as tmp:
        root = Path(tmp)
        os.environ["FNHUB_HOME"] = str(root / "home")  # runs and cache stay in the temp dir
        os.environ["FNHUB_CONFIG_DIR"] = str(root / "config")
        os.environ["FNHUB_OFFLINE"] = "1"
        engines = {"fnhub local": fnhub_chain(root, args.steps),
                   f"kfp.local {kfp.__version__}": kfp_chain(root, args.steps)}
        walls: dict[str, list[float]] = {name: [] for name in engines}
        cpus: dict[str, list[float]] = {name: [] for name in engines}
        starts = itertools.count(1000, 1000)  # a new start for every run: nothing is cached
        warm_up = {name: per_step(run, next(starts), args.steps)[0]  # imports, worker start
                   for name, run in engines.items()}
        for _ in range(args.repeat):
            for name, run in engines.items():
                wall, cpu = per_step(run, next(starts), args.steps)
                walls[name].append(wall)
                cpus[name].append(cpu)

    print(f"per-step overhead, a chain of {args.steps} trivial steps, median of {args.repeat} "
          f"runs (after one warm-up each), load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs:")
    wall_ms = {name: statistics.median(values) * 1000 for name, values in walls.items()}
    cpu_ms = {name: statistics.median(values) * 1000 for name, values in cpus.items()}
    for name in engines:
        runs = ", ".join(f"{v * 1000:.1f}" for v in walls[name])
        print(f"  {name:<18} {wall_ms[name]:7.1f} ms/step wall   {cpu_ms[name]:7.1f} ms/step CPU"
              f"   (wall per run: {runs}; warm-up run: {warm_up[name] * 1000:.0f})")
    fnhub_name, kfp_name = engines
    ratio = wall_ms[kfp_name] / wall_ms[fnhub_name]
    cpu_ratio = cpu_ms[kfp_name] / cpu_ms[fnhub_name]
    verdict = "meets" if ratio >= TARGET_RATIO else "misses"
    print(textwrap.dedent(f"""
        ratio kfp.local / fnhub: {ratio:.1f}x (wall), {cpu_ratio:.1f}x (CPU)
        {verdict} the target of {TARGET_RATIO:.0f}x less overhead per step"""))
    return 0 if ratio >= TARGET_RATIO else 1  # a missed target fails the run


if __name__ == "__main__":
    sys.exit(main())
