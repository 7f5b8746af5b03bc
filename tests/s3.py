"""A real S3 endpoint for tests: moto's server mode on loopback, one per test session.

Tests and hub processes reach it over HTTP like any S3 service; every caller gets its own
bucket, so hubs start empty. Credentials are moto's dummies, set as the standard AWS_*
variables (hub processes inherit them).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from tests.helpers import free_port

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}


class S3Server:
    """moto's S3 on 127.0.0.1:<free port>, started now, stopped by `stop()`."""

    def __init__(self) -> None:
        port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        self.endpoint = f"http://127.0.0.1:{port}"

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint,
                            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
                            region_name=AWS_ENV["AWS_DEFAULT_REGION"])

    def create_bucket(self) -> str:
        name = f"fnhub-test-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        self._server.stop()


@dataclass(frozen=True)
class Backend:
    """Where a test hub keeps its data: `database_url` None is SQLite in the data dir; `env`
    holds the storage settings (empty: blobs in the data dir)."""

    name: str
    database_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def s3_env(server: S3Server, bucket: str, prefix: str = "hub") -> dict[str, str]:
    """The settings of a hub storing its blobs under `s3://bucket/prefix`."""
    return {**AWS_ENV, "FNHUB_SERVER_STORAGE_URL": f"s3://{bucket}/{prefix}",
            "FNHUB_SERVER_S3_ENDPOINT_URL": server.endpoint}
