"""What the side-by-side benchmarks share: alternating runs, medians, ratios, the printed
table, `--json OUT` rows, the exit code, wrk load runs, peer servers in their own venv."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import httpx

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".bench-venvs"  # peers' own venvs (git-ignored), reused between runs
# The rate limiter stays on (its cost is part of every request) with limits no run reaches.
BENCH_LIMITS = {"FNHUB_SERVER_RATE_LIMIT_PUBLISH": "1000000/minute",
                "FNHUB_SERVER_RATE_LIMIT_SEARCH": "100000000/minute"}


@dataclass
class Row:
    """One compared metric; `ratio` is fnhub / peer, so read it with `higher_is_better`."""

    metric: str
    fnhub: float
    peer: float | None
    unit: str
    goal: str
    ok: bool

    @property
    def ratio(self) -> float | None:
        return None if not self.peer else self.fnhub / self.peer


def median(values: list[float]) -> float:
    return statistics.median(values)


def alternate(rounds: int, runs: dict[str, Callable[[], T]]) -> dict[str, list[T]]:
    """Run each measurement once per round, in turn, so load drifts hit all sides alike."""
    out: dict[str, list[T]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            out[name].append(run())
    return out


def report(title: str, rows: list[Row], json_out: Path | None) -> int:
    """Print the table (and write the JSON rows); exit code 1 when a goal is missed."""
    print(f"\n{title}  (load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores)")
    print(f"{'metric':44} {'fnhub':>12} {'peer':>12} {'ratio':>7}  goal")
    for row in rows:
        print(format_row(row))
    if json_out is not None:
        json_out.write_text(json.dumps([{**asdict(r), "ratio": r.ratio} for r in rows],
                                       indent=2) + "\n")
    return 0 if all(r.ok for r in rows) else 1


def format_row(row: Row) -> str:
    peer = f"{row.peer:12.2f}" if row.peer is not None else f"{'-':>12}"
    ratio = f"{row.ratio:7.2f}" if row.ratio is not None else f"{'-':>7}"
    mark = "ok" if row.ok else "MISSED"
    return f"{row.metric:44} {row.fnhub:12.2f} {peer} {ratio}  {row.goal} [{mark}] ({row.unit})"


# ------------------------------------------------------------------------------------ wrk

_WRK_SCRIPT = textwrap.dedent("""
    local reqs = {}
    local headers = {["Authorization"] = os.getenv("WRK_AUTH"),
                     ["Content-Type"] = "application/json"}
    for line in io.lines(os.getenv("WRK_PATHS")) do
      local path, body = line:match("^([^\t]*)\t?(.*)$")
      if body == "" then
        reqs[#reqs + 1] = wrk.format("GET", path, headers)
      else
        reqs[#reqs + 1] = wrk.format("POST", path, headers, body)
      end
    end
    local i = 0
    request = function()
      i = i + 1
      return reqs[(i % #reqs) + 1]
    end
    done = function(summary, latency, requests)
      local e = summary.errors
      io.write(string.format('WRKJSON {"requests": %d, "seconds": %f, "p50": %f, "p95": %f, '
        .. '"p99": %f, "errors": %d, "non2xx": %d}\\n', summary.requests,
        summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
        latency:percentile(99) / 1e3, e.connect + e.read + e.write + e.timeout, e.status))
    end
""")


@dataclass
class Load:
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int


def wrk(base_url: str, paths: list[str], *, connections: int, seconds: int = 5,
        token: str = "", bodies: list[str] | None = None) -> Load:
    """Drive `paths` (round robin; GETs, or POSTs of the JSON `bodies`, one per path) with
    wrk's `connections` keep-alive clients."""
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is missing: apt-get install wrk (make bench does)")
    with tempfile.TemporaryDirectory() as tmp:
        script, listing = Path(tmp) / "paths.lua", Path(tmp) / "paths.txt"
        script.write_text(_WRK_SCRIPT)
        lines = [f"{p}\t{b}" for p, b in zip(paths, bodies, strict=True)] if bodies else paths
        listing.write_text("\n".join(lines) + "\n")
        env = {**os.environ, "WRK_PATHS": str(listing),
               "WRK_AUTH": f"Bearer {token}" if token else ""}
        proc = subprocess.run(
            [binary, "-t", str(min(2, connections)), "-c", str(connections),
             "-d", f"{max(1, seconds)}s", "--timeout", "30s", "-s", str(script), base_url],
            capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0 or "WRKJSON" not in proc.stdout:
        raise RuntimeError(f"wrk failed: {proc.stdout}{proc.stderr}")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("WRKJSON "))
    data = json.loads(line.removeprefix("WRKJSON "))
    return Load(data["requests"] / data["seconds"], data["p50"], data["p95"], data["p99"],
                data["errors"] + data["non2xx"])


# ------------------------------------------------------------------------------ processes

def bench_venv(name: str, requirements: list[str]) -> Path:
    """A venv of the peer's own under .bench-venvs (created once); returns its bin folder."""
    venv = VENVS / name
    marker = venv / ".installed"
    if not marker.is_file() or marker.read_text() != "\n".join(requirements):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        *requirements], check=True)
        marker.write_text("\n".join(requirements))
    return venv / "bin"


def evict_libraries(*prefixes: Path) -> int:
    """Drop the shared libraries under each venv `prefix` from the page cache; returns how
    many files. Peak RSS counts the library pages a process maps, and right after pip wrote
    them more of each library is mapped per page fault: a venv installed minutes ago read
    46 MiB higher for the same imports (pyarrow, DuckDB, pandas). Evicted, every side loads
    its libraries the way a venv that has been around does, however recently it was made.
    Pages a running process maps stay as they are, so call it before importing them."""
    count = 0
    for prefix in prefixes:
        for path in prefix.glob("lib/python*/site-packages/**/*.so*"):
            if path.is_file():
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)
                count += 1
    return count


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


@contextmanager
def process(args: list[str], url: str, log: Path, **kwargs: object) -> Iterator[
        subprocess.Popen[bytes]]:
    """A peer server process, up when the block starts and stopped when it ends."""
    with log.open("wb") as fh:
        proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, **kwargs)  # type: ignore[call-overload]
    try:
        wait_http(url, proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def pypiserver(packages: Path, log: Path) -> Iterator[str]:
    """pypiserver 2.4 (its own venv; its "auto" server picks waitress) serving `packages`;
    yields its URL."""
    from tests.helpers import free_port

    peer_bin = bench_venv("pypiserver", ["pypiserver==2.4.*", "waitress"])
    url = f"http://127.0.0.1:{free_port()}"
    with process([str(peer_bin / "pypi-server"), "run", "-p", url.rsplit(":", 1)[1], "-i",
                  "127.0.0.1", "--server", "auto", str(packages)], url + "/simple/", log):
        yield url


def _status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory (VmHWM) so far."""
    return _status_mib(pid, "VmHWM")


def rss_mib(pid: int) -> float:
    """The process's resident memory (VmRSS) now."""
    return _status_mib(pid, "VmRSS")


class Incomplete(Exception):
    """A measurement that did not finish: stopped at its time or memory limit, or failed.
    Benches record it as such (a peer that cannot finish at a size is a result, not a crash)."""

    def __init__(self, reason: str, seconds: float, peak_rss_mib: float) -> None:
        super().__init__(reason)
        self.reason, self.seconds, self.peak_rss_mib = reason, seconds, peak_rss_mib


def _tree_rss_mib(pid: int) -> float:
    """Resident memory of `pid` and its descendants now (0 for those already gone)."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += rss_mib(current)
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, RuntimeError):
            continue
    return total


def run_bounded(args: list[str], *, seconds: float, max_rss_mib: float) -> str:
    """Run `args` to the end and return its stdout; raises Incomplete when it exits non-zero,
    outlives `seconds`, or its process tree's memory passes `max_rss_mib` (then it is killed
    before it can take the machine's memory from everyone else)."""
    started = time.monotonic()
    peak = 0.0
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, stdout=out, stderr=err, start_new_session=True)
        reason = ""
        while proc.poll() is None:
            peak = max(peak, _tree_rss_mib(proc.pid))
            elapsed = time.monotonic() - started
            if elapsed > seconds:
                reason = f"stopped at the {seconds / 60:g}-minute limit"
            elif peak > max_rss_mib:
                reason = f"stopped at the {max_rss_mib / 1024:g} GiB memory limit"
            if reason:
                os.killpg(proc.pid, 9)
                proc.wait()
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if not reason and proc.returncode != 0:
        tail = stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        reason = f"failed: {tail[0][:200]}"
        print(stderr[-3000:], file=sys.stderr)
    if reason:
        raise Incomplete(reason, elapsed, peak)
    return stdout
