"""Throughput and memory of the hub's OCI registry for one large blob, pushed and pulled.

    .venv/bin/python bench/oci_blob_transfer.py [--size-mib 1024] [--chunk-mib 0]

Starts a throw-away `hub serve` process, pushes a blob of the given size the way docker and
skopeo do (POST a session, PATCH the body as one stream, PUT the digest) or, with
`--chunk-mib N`, in PATCH chunks of N MiB, then pulls it back streaming. Prints MiB/s each way
and the hub process's resident memory before and at its peak (VmHWM), against the target of
a peak under 200 MiB.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import start_hub  # noqa: E402  (the repository's own hub-process helper)

MiB = 1 << 20
TARGET_PEAK = 200 * MiB


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def _blob(size: int, block: bytes) -> Iterator[bytes]:
    for i in range(size // len(block)):
        yield i.to_bytes(8, "big") + block[8:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--chunk-mib", type=int, default=0, help="0: one streamed PATCH")
    args = parser.parse_args()
    size = args.size_mib * MiB
    block = os.urandom(MiB)
    sha = hashlib.sha256()
    for piece in _blob(size, block):
        sha.update(piece)
    digest = "sha256:" + sha.hexdigest()

    with tempfile.TemporaryDirectory(prefix="fnhub-bench-") as tmp:
        hub = start_hub(Path(tmp) / "data")
        try:
            headers = {"Authorization": f"Bearer {hub.admin_token}"}
            before = _status(hub.proc.pid, "VmRSS")
            with httpx.Client(base_url=hub.url, headers=headers, timeout=600) as client:
                started = time.perf_counter()
                location = client.post("/v2/bench/blob/blobs/uploads/").headers["Location"]
                if args.chunk_mib:
                    chunk, offset, pending = args.chunk_mib * MiB, 0, bytearray()
                    for piece in _blob(size, block):
                        pending += piece
                        if len(pending) >= chunk or offset + len(pending) == size:
                            end = offset + len(pending) - 1
                            location = client.patch(location, content=bytes(pending), headers={
                                "Content-Range": f"{offset}-{end}"}).headers["Location"]
                            offset, pending = end + 1, bytearray()
                else:
                    location = client.patch(location, content=_blob(size, block)
                                            ).headers["Location"]
                done = client.put(location, params={"digest": digest})
                done.raise_for_status()
                pushed = time.perf_counter() - started

                started, received = time.perf_counter(), 0
                with client.stream("GET", f"/v2/bench/blob/blobs/{digest}") as response:
                    for piece in response.iter_bytes(MiB):
                        received += len(piece)
                pulled = time.perf_counter() - started
            peak = _status(hub.proc.pid, "VmHWM")
        finally:
            hub.stop()
    assert received == size
    print(f"blob           {args.size_mib} MiB"
          f" ({'one streamed PATCH' if not args.chunk_mib else f'{args.chunk_mib} MiB chunks'})")
    print(f"push           {size / MiB / pushed:8.1f} MiB/s  ({pushed:.1f} s)")
    print(f"pull           {size / MiB / pulled:8.1f} MiB/s  ({pulled:.1f} s)")
    print(f"hub RSS        {before / MiB:8.1f} MiB before, {peak / MiB:.1f} MiB at peak "
          f"(target < {TARGET_PEAK / MiB:.0f} MiB: {'met' if peak < TARGET_PEAK else 'MISSED'})")
    return 0 if peak < TARGET_PEAK else 1


if __name__ == "__main__":
    sys.exit(main())
