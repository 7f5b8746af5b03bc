"""How fast `hub` starts, against `pip --version` measured in the same run.

    .venv/bin/python bench/cli_startup.py [--rounds 15] [--json OUT] [--hub PATH] [--pip CMD]

Each round runs `hub --version`, `hub --help` and `pip --version` once each, in turn, so a
busy machine slows all three alike; the medians of the wall times are compared. The CPU time
of each (user + system, from the children's rusage) is printed beside them as a check that
holds up on a loaded machine. The target (issue #14, acceptance 5): both `hub` commands
within 1.5x `pip --version`; the script exits 1 when either is not.

`pip` is this interpreter's (`python -m pip`), or, in a venv without pip (uv's), the pip of
the Python the venv was made from: the same interpreter either way.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET = 1.5


def _default_pip() -> list[str]:
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    base = Path(sys.base_prefix) / "bin"
    return [str(base / "python3"), "-m", "pip"]


def _timed(command: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run (which must succeed)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    parser.add_argument("--hub", default=str(Path(sys.executable).parent / "hub"))
    parser.add_argument("--pip", help="The pip command (default: this interpreter's pip).")
    args = parser.parse_args()
    pip = shlex.split(args.pip) if args.pip else _default_pip()
    commands = {"hub --version": [args.hub, "--version"], "hub --help": [args.hub, "--help"],
                "pip --version": [*pip, "--version"]}
    for command in commands.values():  # warm the disk cache; a failing command stops here
        _timed(command)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(args.rounds):
        for name, command in commands.items():
            samples[name].append(_timed(command))
    medians = {name: {"wall": statistics.median(w for w, _ in runs),
                      "cpu": statistics.median(c for _, c in runs)}
               for name, runs in samples.items()}
    pip_wall, pip_cpu = medians["pip --version"]["wall"], medians["pip --version"]["cpu"]
    ratios = {name: {"wall": m["wall"] / pip_wall, "cpu": m["cpu"] / pip_cpu}
              for name, m in medians.items() if name != "pip --version"}
    print(f"{'command':<16}{'median wall':>13}{'median cpu':>12}{'wall/pip':>10}{'cpu/pip':>9}")
    for name, m in medians.items():
        ratio = ratios.get(name, {"wall": 1.0, "cpu": 1.0})
        print(f"{name:<16}{m['wall'] * 1000:>10.0f} ms{m['cpu'] * 1000:>9.0f} ms"
              f"{ratio['wall']:>10.2f}{ratio['cpu']:>9.2f}")
    ok = all(r["wall"] <= TARGET for r in ratios.values())
    print(f"target: hub/pip <= {TARGET} (median wall, {args.rounds} alternating rounds): "
          f"{'met' if ok else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps({"rounds": args.rounds, "target": TARGET, "ok": ok,
                                         "pip": pip, "medians_s": medians, "ratios": ratios},
                                        indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
