"""Acceptance: the README's first command (`make demo`) leaves a running hub whose seeded catalog
is searchable, installable and runnable, signed by the hub's own `library` key."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from fnhub.core.manifest import load_manifest
from tests.helpers import CLI, ENV_VARS, ROOT, free_port

pytestmark = pytest.mark.slow


def test_make_demo_serves_the_seeded_catalog(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS and k != "MAKEFLAGS"}
    proc = subprocess.Popen(["make", "-s", "demo", f"PORT={port}", f"DATA={tmp_path / 'data'}"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "the demo hub did not come up"
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)

        user = CLI(tmp_path / "user", url)
        names = {i["name"] for i in user.json("search", "")["items"]}
        assert {"load-dataset", "describe"} <= names
        best = user.json("search", "summary statistics")["items"][0]
        assert best["name"] == "describe"
        seeded = load_manifest(ROOT / "catalog" / "load-dataset").metadata.version
        assert user.json("verify", f"hub://load-dataset:{seeded}")["function"] == (
            "library/load-dataset")

        loaded = user.json("run", "hub://load-dataset:^1", "-p", "name=wine")
        assert loaded["outputs"]["n_rows"] == 178
        described = user.json("run", "hub://describe", "-i",
                              f"table={loaded['outputs']['dataset']}", "-p", "bins=5")
        assert described["outputs"]["n_rows"] == 178
        assert len(list(Path(described["outputs"]["plots"]).glob("*.png"))) >= 13
        assert not (tmp_path / "data" / "admin-token").stat().st_mode & 0o077
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        output = proc.communicate(timeout=30)[0]
    assert b"admin-token" in output  # the path is printed ...
    token = (tmp_path / "data" / "admin-token").read_text().strip()
    assert token.encode() not in output  # ... the token never is
    banner = output.decode()  # plain lines among the logs: where, the token's file, how to stop
    assert f"fnhub hub on {url}" in banner and f"export FNHUB_HUB={url}" in banner
    assert f"admin token: {(tmp_path / 'data' / 'admin-token').resolve()}" in banner
    assert "stop:        Ctrl-C" in banner
    assert '{"time"' not in banner  # `make demo` logs text lines, not JSON
