"""Helpers for tests that drive real processes: the hub server and the `hub` CLI."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import NullPool

from fnhub.hub.context import open_store
from fnhub.hub.settings import ServerSettings
from fnhub.hub.storage import BlobStore

ROOT = Path(__file__).resolve().parent.parent
HUB_BIN = str(Path(sys.executable).parent / "hub")
ENV_VARS = ("FNHUB_HUB", "FNHUB_TOKEN", "FNHUB_HOME", "FNHUB_CONFIG_DIR", "FNHUB_OFFLINE",
            "FNHUB_DEBUG", *(k for k in os.environ if k.startswith("FNHUB_SERVER_")))


def require_file(path: Path | None, what: str) -> Path:
    """`path`, or skip the test when it is missing; under CI (`CI=true`, which `.ci/run` sets)
    missing is a failure, since `.ci/run` installs it."""
    if path is not None and path.is_file():
        return path
    message = f"{what} is not installed ({path or 'no path given'}); .ci/run installs it"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class HubProcess:
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path
    database_url: str = ""
    settings_env: dict[str, str] = field(default_factory=dict)  # FNHUB_SERVER_* it was given

    def __post_init__(self) -> None:
        self.database_url = self.database_url or f"sqlite:///{self.data_dir / 'hub.db'}"

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_hub(data_dir: Path, *, seed: bool = False, extra_env: dict[str, str] | None = None,
              database_url: str | None = None, timeout: float = 120.0) -> HubProcess:
    """`hub serve` as a real process on a free loopback port; waits until /healthz answers
    (patiently: under `pytest -n` several hubs may be starting at once on a busy machine).

    `database_url` None keeps the default SQLite file in `data_dir`.
    """
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir.parent / f"hub-{port}.log"
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    if database_url:
        env["FNHUB_SERVER_DATABASE_URL"] = database_url
    env.update(extra_env or {})
    args = [HUB_BIN, "serve", "--host", "127.0.0.1", "--port", str(port),
            "--data-dir", str(data_dir)]
    if seed:
        args.append("--seed-catalog")
    with log.open("wb") as fh:
        proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"hub exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return HubProcess(url, data_dir, proc, log, database_url or "",
                                  {k: v for k, v in env.items() if k.startswith("FNHUB_SERVER_")})
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"hub did not start in {timeout}s:\n{log.read_text()}")


def stored_files(hub: HubProcess) -> list[str]:
    """Everything the hub's blob store holds, wherever it keeps it (a folder or an S3
    bucket): blob digests, then leftovers of uploads (staging files, session parts,
    multipart uploads)."""
    settings = ServerSettings(
        data_dir=hub.data_dir,
        storage_url=hub.settings_env.get("FNHUB_SERVER_STORAGE_URL", ""),
        s3_endpoint_url=hub.settings_env.get("FNHUB_SERVER_S3_ENDPOINT_URL"))
    store = open_store(settings)
    return blob_digests(store) + leftover_names(store)


def blob_digests(store: BlobStore) -> list[str]:
    return sorted(entry.digest for entry in store.listing())


def leftover_names(store: BlobStore) -> list[str]:
    """What uploads left in the store besides blobs (staging files, session parts, S3
    multipart uploads), by name."""
    return sorted(leftover.name for leftover in store.leftovers())


@contextmanager
def hub_database(hub: HubProcess) -> Iterator[Connection]:
    """A transaction on the hub's own database (SQLite or PostgreSQL), committed at the end:
    tests alter the hub's rows directly, the way someone who owns its database could."""
    engine = create_engine(hub.database_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


@dataclass
class CLI:
    """Runs the real `hub` command in a subprocess as one user (own home, config and token)."""

    root: Path
    hub_url: str | None = None
    token: str | None = None
    offline: bool = False
    env_extra: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
        env.update(FNHUB_HOME=str(self.root / "home"), FNHUB_CONFIG_DIR=str(self.root / "config"),
                   COLUMNS="200")
        if self.hub_url:
            env["FNHUB_HUB"] = self.hub_url
        if self.token:
            env["FNHUB_TOKEN"] = self.token
        if self.offline:
            env["FNHUB_OFFLINE"] = "1"
        env.update(self.env_extra)
        return env

    def __call__(self, *args: str, cwd: Path | None = None,
                 timeout: float = 300) -> subprocess.CompletedProcess[str]:
        self.root.mkdir(parents=True, exist_ok=True)
        return subprocess.run([HUB_BIN, *args], capture_output=True, text=True, env=self.env,
                              cwd=cwd or self.root, timeout=timeout, check=False)

    def ok(self, *args: str, cwd: Path | None = None) -> str:
        proc = self(*args, cwd=cwd)
        assert proc.returncode == 0, (
            f"hub {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def json(self, *args: str, cwd: Path | None = None) -> Any:
        return json.loads(self.ok(*args, "--json", cwd=cwd))

    def fails(self, *args: str, match: str, cwd: Path | None = None) -> str:
        """The command fails with a one-line error (no traceback) containing `match`."""
        proc = self(*args, cwd=cwd)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, f"hub {' '.join(args)} unexpectedly succeeded:\n{output}"
        assert "Traceback" not in output, output
        assert match.lower() in output.lower(), f"{match!r} not in:\n{output}"
        return output


def publisher(root: Path, hub: HubProcess, user: str, scope: str | None = None) -> CLI:
    """`user` with a publish token (its own namespace unless `scope` says), a signing key, and
    that key registered for the namespace named after it."""
    admin = CLI(root / "admin", hub.url, hub.admin_token)
    token = admin.json("tokens", "create", user, "--scope", scope or f"publish:{user}",
                       "--user", user)
    cli = CLI(root / user, hub.url, token["token"])
    cli.ok("keys", "generate")
    cli.ok("keys", "register", "--namespace", user)
    return cli


def write_function(folder: Path, *, name: str, namespace: str, version: str,
                   factor_default: float = 1.0, extra: str = "") -> Path:
    """A small stdlib-only function: scales the `value` column of a CSV by a factor."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "function.yaml").write_text(f"""\
apiVersion: fnhub/v1
kind: Function
metadata:
  name: {name}
  namespace: {namespace}
  version: {version}
  description: Scale the value column of a CSV table
  categories: [data-preparation]
  labels: {{framework: stdlib}}
  license: Apache-2.0
spec:
  kind: job
  entrypoint: scale.py:scale
  inputs:
    - {{name: table, type: dataset, description: CSV with a value column}}
    - {{name: factor, type: float, default: {factor_default}}}
  outputs:
    - {{name: scaled, type: dataset}}
    - {{name: total, type: float}}
""")
    (folder / "scale.py").write_text(f"""\
import csv
import os
import tempfile
from pathlib import Path


def scale(table: Path, factor: float = {factor_default}) -> dict:
    out_dir = Path(os.environ.get("FNHUB_OUTPUT_DIR") or tempfile.mkdtemp())
    rows = list(csv.DictReader(table.open()))
    total = 0.0
    out = out_dir / "scaled.csv"
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["value"])
        writer.writeheader()
        for row in rows:
            value = float(row["value"]) * factor
            total += value
            writer.writerow({{"value": value}})
    return {{"scaled": out, "total": total}}
{extra}
""")
    return folder


_TRANSACTION = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


@contextmanager
def sql_statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """(statement, parameters) of every query `engine` runs inside the block (transaction
    control aside), for guards that count queries or look at their plans."""
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(_TRANSACTION):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
