"""`hub install` of a small (8 KB) function against `pip install --no-deps` of a wheel of the
same size from pypiserver, and the raw floor (curl + sha256sum of the package).

    .venv/bin/python bench/install.py [--rounds 7] [--json OUT]

Warm means caches of the machine, not of the tools: every run installs into a new
FNHUB_HOME (so the package is downloaded, verified and unpacked) or a new pip `--target` with
`--no-cache-dir`; the publisher's key is already trusted. Goal: `hub install` faster than pip.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BENCH_LIMITS, Row, alternate, median, pypiserver, report
from tests.helpers import HUB_BIN, start_hub
from tests.hub.factories import Upload, build, envelope_for, make_publisher, write_function

BODY = "\n".join(f"VALUE_{i} = {i * 7919}  # padding to a realistic module size"
                 for i in range(160)) + "\n"


def write_wheel(folder: Path) -> Path:
    """A valid pure-Python wheel `small-1.0.0` of about 8 KB."""
    files = {
        "small/__init__.py": BODY,
        "small-1.0.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: small\nVersion: 1.0.0\n",
        "small-1.0.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: bench\n"
                                       "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    files["small-1.0.0.dist-info/RECORD"] = "\n".join([*record, "small-1.0.0.dist-info/RECORD,,"])
    wheel = folder / "small-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return wheel


def timed(args: list[str], env: dict[str, str] | None = None, *, shell: bool = False,
          cwd: Path | None = None) -> float:
    started = time.perf_counter()
    proc = subprocess.run(args if not shell else " ".join(args), env=env, shell=shell, cwd=cwd,
                          capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{proc.stdout}{proc.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path, dest="json_out")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fnhub-bench-") as tmp:
        root = Path(tmp)
        wheels = root / "wheels"
        wheels.mkdir()
        write_wheel(wheels)
        hub = start_hub(root / "data", extra_env=BENCH_LIMITS)
        try:
            with httpx.Client(base_url=hub.url, timeout=60) as client:
                publisher = make_publisher(client, hub.admin_token, "bench", root / "fns")
                folder = write_function(root / "fns", "small", "1.0.0", namespace="bench")
                (folder / "padding.py").write_text(BODY)
                archive, packed = build(folder)
                publisher.send(Upload("bench", "small", (folder / "function.yaml").read_text(),
                                      archive.read_bytes(),
                                      envelope_for("bench/small@1.0.0", packed.digest,
                                                   publisher.key))).raise_for_status()
            host = hub.url.removeprefix("http://")
            uri = f"hub://{host}/bench/small:1.0.0"
            package = f"{hub.url}/api/v1/functions/bench/small/versions/1.0.0/package"
            base_env = {**os.environ, "FNHUB_CONFIG_DIR": str(root / "config"),
                        "FNHUB_HUB": hub.url}
            homes = iter(range(1_000_000))

            def hub_install() -> float:
                run = root / f"run{next(homes)}"  # its FNHUB_HOME, and the cwd for fnhub.lock
                run.mkdir()
                return timed([HUB_BIN, "install", uri], {**base_env, "FNHUB_HOME": str(run)},
                             cwd=run)

            hub_install()  # trusts the publisher's key on first use
            with pypiserver(wheels, root / "pypiserver.log") as peer_url:
                targets = iter(range(1_000_000))
                results = alternate(args.rounds, {
                    "fnhub": hub_install,
                    "peer": lambda: timed([sys.executable, "-m", "pip", "install", "--quiet",
                                           "--no-deps", "--no-cache-dir",
                                           "--disable-pip-version-check", "--index-url",
                                           f"{peer_url}/simple/", "--target",
                                           str(root / f"target{next(targets)}"), "small==1.0.0"]),
                    "floor": lambda: timed(["curl", "-sf", package, "|", "sha256sum"],
                                           shell=True),
                })
        finally:
            hub.stop()
    ours, pip, floor = (median(results[k]) for k in ("fnhub", "peer", "floor"))
    rows = [Row("hub install, 8 KB package (s)", ours, pip, "s; peer = pip --no-deps",
                "faster than pip", ours < pip),
            Row("hub install vs raw floor (s)", ours, floor, "s; peer = curl | sha256sum",
                "(informative)", True)]
    return report("install vs pip from pypiserver", rows, args.json_out)


if __name__ == "__main__":
    sys.exit(main())
