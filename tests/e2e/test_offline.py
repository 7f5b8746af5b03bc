"""Acceptance: FNHUB_OFFLINE=1 runs installed functions with the hub stopped, never touching the
network; asking for something not installed fails clearly."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from tests.helpers import CLI, start_hub, write_function

pytestmark = pytest.mark.slow


class ConnectionRecorder:
    """A listening socket that counts every connection made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def test_offline_runs_installed_and_refuses_the_rest(tmp_path: Path) -> None:
    hub = start_hub(tmp_path / "hub")
    try:
        admin = CLI(tmp_path / "admin", hub.url, hub.admin_token)
        token = admin.json("tokens", "create", "bob", "--scope", "publish:*", "--user", "bob")
        bob = CLI(tmp_path / "bob", hub.url, token["token"])
        bob.ok("keys", "generate")
        bob.ok("keys", "register", "--namespace", "bob")
        bob.ok("publish", str(write_function(tmp_path / "fn", name="scale", namespace="bob",
                                             version="1.0.0")))
        bob.ok("install", "hub://bob/scale:^1")
    finally:
        hub.stop()

    recorder = ConnectionRecorder()
    try:
        offline = CLI(bob.root, recorder.url, bob.token, offline=True)
        data = tmp_path / "data.csv"
        data.write_text("value\n2\n")
        ran = offline.json("run", "hub://bob/scale:^1", "-i", f"table={data}", "-p", "factor=4")
        assert ran["outputs"]["total"] == 8.0
        assert "bob/scale" in offline.ok("list")

        offline.fails("run", "hub://bob/other", "-i", f"table={data}",
                      match="bob/other is not installed and offline mode is on")
        offline.fails("run", "hub://bob/scale:^2", "-i", f"table={data}",
                      match="no version of bob/scale matches '^2'")
        offline.fails("install", "hub://library/describe", match="offline")
        offline.fails("search", "scale", match="offline mode is on")
        assert recorder.accepted == 0
    finally:
        recorder.close()
