"""OCI push and pull of a 512 MiB image in 4 layers with skopeo: the hub against
distribution (Debian's `docker-registry` 2.8), and the hub's peak memory while doing it.

    .venv/bin/python bench/oci_peer.py [--layer-mib 128] [--layers 4] [--rounds 3] [--json OUT]

Each round writes a new image as an OCI layout (random, incompressible layers, streamed to
disk), pushes it with `skopeo copy oci:... docker://...` to a new repository on each registry in
turn and pulls it back into a new layout; MiB/s is the image size over the wall time of the
copy. A new image per round, because skopeo remembers where it pushed a blob before
(/var/lib/containers/cache) and later pushes of the same blob to that registry become cross-
repository mounts: with one image, rounds after the first timed mounts, not uploads.
Goals: the hub at least as fast as distribution both ways, and its peak RSS (VmHWM) under
100 MiB; the RSS of each server when idle after start is printed beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Row, alternate, median, peak_rss_mib, process, report, rss_mib
from tests.helpers import free_port, start_hub

MiB = 1 << 20
RSS_GOAL_MIB = 100.0


class _Random:
    """A file-like source of `size` random bytes for tarfile (never all in memory)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return os.urandom(n)


def _blob(layout: Path, write: object) -> tuple[str, int]:
    """Write a blob through `write(fh)` into the layout, named by its digest."""
    tmp = layout / "blobs" / "sha256" / "tmp"
    with tmp.open("wb") as fh:
        write(fh)  # type: ignore[operator]
    sha = hashlib.sha256()
    with tmp.open("rb") as fh:
        while chunk := fh.read(MiB):
            sha.update(chunk)
    tmp.rename(tmp.with_name(sha.hexdigest()))
    return "sha256:" + sha.hexdigest(), tmp.with_name(sha.hexdigest()).stat().st_size


def write_layout(layout: Path, layers: int, layer_size: int) -> int:
    (layout / "blobs" / "sha256").mkdir(parents=True)
    descriptors, diff_ids = [], []
    for i in range(layers):
        def write_layer(fh: object, i: int = i) -> None:
            with tarfile.open(fileobj=fh, mode="w") as tar:  # type: ignore[call-overload]
                info = tarfile.TarInfo(f"layer{i}.bin")
                info.size = layer_size
                tar.addfile(info, _Random(layer_size))
        digest, size = _blob(layout, write_layer)
        descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                            "digest": digest, "size": size})
        diff_ids.append(digest)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    config_digest, config_size = _blob(layout, lambda fh: fh.write(config))
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_size},
        "layers": descriptors}).encode()
    manifest_digest, manifest_size = _blob(layout, lambda fh: fh.write(manifest))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
        "size": manifest_size, "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}))
    return sum(d["size"] for d in descriptors)


def skopeo(*args: str) -> None:
    binary = shutil.which("skopeo")
    if binary is None:
        raise SystemExit("skopeo is missing: apt-get install skopeo (make bench does)")
    subprocess.run([binary, *args], check=True, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer-mib", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, dest="json_out")
    args = parser.parse_args()
    registry = shutil.which("docker-registry")
    if registry is None:
        raise SystemExit("docker-registry is missing: apt-get install docker-registry")
    with tempfile.TemporaryDirectory(prefix="fnhub-bench-", dir=os.environ.get("TMPDIR")) as tmp:
        root = Path(tmp)
        hub = start_hub(root / "hub")
        port = free_port()
        (root / "registry.yml").write_text(
            f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root / 'registry'}\n"
            f"http:\n  addr: 127.0.0.1:{port}\n")
        try:
            httpx.post(hub.url + "/api/v1/namespaces", json={"name": "bench"},
                       headers={"Authorization": f"Bearer {hub.admin_token}"}).raise_for_status()
            hub_host, creds = hub.url.removeprefix("http://"), f"admin:{hub.admin_token}"
            with process([registry, "serve", str(root / "registry.yml")],
                         f"http://127.0.0.1:{port}/v2/", root / "registry.log") as peer:
                idle_rss = rss_mib(hub.proc.pid), rss_mib(peer.pid)
                counter = iter(range(10_000))
                size = 0

                def new_image() -> None:
                    nonlocal size
                    shutil.rmtree(root / "image", ignore_errors=True)
                    size = write_layout(root / "image", args.layers, args.layer_mib * MiB)

                def copy(host: str, *auth: str) -> tuple[float, float]:
                    repo, n = f"{host}/bench/img{next(counter)}", next(counter)
                    started = time.perf_counter()
                    skopeo("copy", "--dest-tls-verify=false", *(("--dest-creds", *auth)
                           if auth else ()), f"oci:{root / 'image'}:v1", f"docker://{repo}:v1")
                    pushed = time.perf_counter() - started
                    started = time.perf_counter()
                    skopeo("copy", "--src-tls-verify=false", *(("--src-creds", *auth)
                           if auth else ()), f"docker://{repo}:v1", f"oci:{root / f'back{n}'}:v1")
                    pulled = time.perf_counter() - started
                    shutil.rmtree(root / f"back{n}")
                    return size / MiB / pushed, size / MiB / pulled

                results = alternate(args.rounds, {
                    "image": new_image,
                    "fnhub": lambda: copy(hub_host, creds),
                    "peer": lambda: copy(f"127.0.0.1:{port}")})
                hub_rss, peer_rss = peak_rss_mib(hub.proc.pid), peak_rss_mib(peer.pid)
        finally:
            hub.stop()
    rows = []
    for i, way in enumerate(("push", "pull")):
        ours = median([r[i] for r in results["fnhub"]])
        theirs = median([r[i] for r in results["peer"]])
        rows.append(Row(f"skopeo {way}, {size // MiB} MiB in {args.layers} layers", ours, theirs,
                        "MiB/s", ">= 1.0x", ours >= theirs))
    rows.append(Row("RSS idle after start", idle_rss[0], idle_rss[1], "MiB", "(informative)",
                    True))
    rows.append(Row("peak RSS during the copies", hub_rss, peer_rss, "MiB",
                    f"< {RSS_GOAL_MIB:.0f} MiB", hub_rss < RSS_GOAL_MIB))
    return report("OCI registry vs distribution 2.8", rows, args.json_out)


if __name__ == "__main__":
    sys.exit(main())
