"""Artifacts in an S3 bucket, for Dask workers that share no disk with the caller.

With `storage="s3://bucket/prefix"` (`--storage`) the dask engine passes everything a step needs
through the bucket. Layout under the prefix:

    functions/<hex>.tar.gz              a step's function package, named by its digest; a worker
                                        unpacks it once into <FNHUB_HOME>/cache/functions/<hex>/
    inputs/<hex>/<name>                 an input artifact of the caller's (a constant or a
                                        parameter), named by its digest
    runs/<run-id>/<step>/outputs/...    a step's artifact outputs
    runs/<run-id>/<step>/log.txt        what the function printed

An artifact is named by its `s3://` URI; a folder's ends in `/` and is one object per file (an
empty folder is a `<dir>/` marker object). A step task (`execute_remote`) fetches its function
and inputs into a temporary folder on the worker, runs `execute_step` there, uploads what it
made and removes the folder. Transfers are boto3's managed ones, streamed from and to files, so
memory stays bounded; `env="venv"` steps get their venvs in the worker's own FNHUB_HOME.
Endpoint, region and credentials come from the standard AWS variables and files
(`AWS_ENDPOINT_URL` or `AWS_ENDPOINT_URL_S3` for MinIO, moto, ...), on every machine.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from fnhub.config import load_config
from fnhub.core.errors import Conflict, DigestMismatch, FnhubError, InvalidInput
from fnhub.core.packaging import DIGEST_PREFIX, digest_file, digest_hex, pack, unpack
from fnhub.pipeline.cache import REMOTE_SCHEME
from fnhub.pipeline.execute import (
    StepOutcome,
    StepTask,
    execute_step,
    failed_outcome,
    utc_now,
)

TRANSFER_ERRORS = (BotoCoreError, ClientError, OSError)
_TRANSFER = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20,
                           max_concurrency=4)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len(REMOTE_SCHEME):].partition("/")
    return bucket, key


def describe(exc: BaseException) -> str:
    """One line for what went wrong, in an outcome's error (fnhub's message, or boto's)."""
    return exc.message if isinstance(exc, FnhubError) else f"{type(exc).__name__}: {exc}"


class S3Storage:
    """A bucket and a key prefix (`""` or ending in `/`); pickled without its boto3 client."""

    def __init__(self, bucket: str, prefix: str = "") -> None:
        self.bucket, self.prefix = bucket, prefix
        self._client: Any = None

    @classmethod
    def from_url(cls, url: str) -> S3Storage:
        if not url.startswith(REMOTE_SCHEME):
            raise InvalidInput(f"storage must be s3://BUCKET[/PREFIX], got {url!r}",
                               hint="for a folder every worker mounts, give it as the runs "
                                    "folder (--runs-dir) instead")
        bucket, _, prefix = url[len(REMOTE_SCHEME):].partition("/")
        prefix = prefix.strip("/")
        if not _BUCKET.match(bucket):
            raise InvalidInput(f"storage {url!r}: {bucket!r} is not an S3 bucket name "
                               "(3 to 63 lowercase letters, digits, dots and hyphens)")
        if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
            raise InvalidInput(f"storage {url!r}: the prefix has an empty, '.' or '..' part")
        return cls(bucket, f"{prefix}/" if prefix else "")

    def __getstate__(self) -> dict[str, str]:
        return {"bucket": self.bucket, "prefix": self.prefix}

    def __setstate__(self, state: dict[str, str]) -> None:
        self.bucket, self.prefix, self._client = state["bucket"], state["prefix"], None

    @property
    def url(self) -> str:
        return f"{REMOTE_SCHEME}{self.bucket}/{self.prefix}".rstrip("/")

    @property
    def client(self) -> Any:
        if self._client is None:  # boto3 reads AWS_ENDPOINT_URL(_S3), AWS_* and ~/.aws itself
            self._client = boto3.client("s3", config=Config(
                retries={"mode": "standard"}, connect_timeout=10, read_timeout=60))
        return self._client

    def key(self, *parts: str) -> str:
        return self.prefix + "/".join(parts)

    def uri(self, key: str) -> str:
        return f"{REMOTE_SCHEME}{self.bucket}/{key}"

    def check(self) -> None:
        """Refuse, before any step runs, a bucket these settings cannot reach."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise InvalidInput(
                f"storage {self.url}: bucket {self.bucket!r} is not usable at "
                f"{self.client.meta.endpoint_url}: {exc}",
                hint="check the bucket name, AWS_ENDPOINT_URL and the AWS_* credentials"
            ) from None

    # -- objects ------------------------------------------------------------------

    def _objects(self, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                          Prefix=prefix):
            yield from page.get("Contents", [])

    def upload(self, path: Path, key: str) -> str:
        """A file to `key`, or a folder's files under `key/`; the artifact's URI."""
        if not path.is_dir():
            self.client.upload_file(str(path), self.bucket, key, Config=_TRANSFER)
            return self.uri(key)
        for root, dirs, files in os.walk(path):
            rel = Path(root).relative_to(path).as_posix()
            base = key if rel == "." else f"{key}/{rel}"
            if not dirs and not files:
                self.client.put_object(Bucket=self.bucket, Key=f"{base}/", Body=b"")
            for name in files:
                self.client.upload_file(os.path.join(root, name), self.bucket, f"{base}/{name}",
                                        Config=_TRANSFER)
        return self.uri(f"{key}/")

    def download(self, uri: str, dest: Path) -> Path:
        """The artifact at `uri` (any bucket these settings reach) as the file or folder `dest`."""
        bucket, key = _split(uri)
        if not key.endswith("/"):
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.client.download_file(bucket, key, str(dest), Config=_TRANSFER)
            return dest
        dest.mkdir(parents=True, exist_ok=True)
        for obj in self._objects(bucket, key):
            rel = obj["Key"][len(key):]
            if PurePosixPath(rel).is_absolute() or ".." in PurePosixPath(rel).parts:
                raise InvalidInput(f"{uri}: object {obj['Key']!r} would land outside the folder")
            target = dest / rel
            if rel.endswith("/") or not rel:
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            self.client.download_file(bucket, obj["Key"], str(target), Config=_TRANSFER)
        return dest

    def fingerprint(self, uri: str) -> str | None:
        """The artifact's objects as they are now (keys, sizes, ETags); None when it is gone."""
        bucket, key = _split(uri)
        try:
            if key.endswith("/"):
                lines = [f"{o['Key'][len(key):]} {o['Size']} {o['ETag']}"
                         for o in self._objects(bucket, key)]
                if not lines:
                    return None
            else:
                head = self.client.head_object(Bucket=bucket, Key=key)
                lines = [f"{head['ContentLength']} {head['ETag']}"]
        except (BotoCoreError, ClientError):  # gone, or unreachable: either way not reusable
            return None
        return DIGEST_PREFIX + hashlib.sha256("\n".join(lines).encode()).hexdigest()

    def _exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
                return False
            raise
        return True

    # -- what the caller sends, what a worker fetches --------------------------------

    def _function_key(self, digest: str) -> str:
        return self.key("functions", f"{digest_hex(digest)}.tar.gz")

    def put_function(self, folder: Path) -> str:
        """Upload the package of the function in `folder` unless it is there; its digest."""
        with tempfile.TemporaryDirectory(prefix="fnhub-pack-") as tmp:
            archive = Path(tmp) / "package.tar.gz"
            digest = pack(folder, archive).digest
            if not self._exists(self._function_key(digest)):
                self.client.upload_file(str(archive), self.bucket, self._function_key(digest),
                                        Config=_TRANSFER)
        return digest

    def fetch_function(self, digest: str, cache: Path) -> Path:
        """The function's folder, unpacked once per machine into `cache/<hex>` and checked."""
        folder = cache / digest_hex(digest)
        if folder.is_dir():
            return folder
        cache.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{folder.name}.", suffix=".tar.gz", dir=cache)
        os.close(fd)
        try:
            self.client.download_file(self.bucket, self._function_key(digest), name,
                                      Config=_TRANSFER)
            if (got := digest_file(name)) != digest:
                raise DigestMismatch(f"{self.uri(self._function_key(digest))} is {got}, "
                                     f"not the package {digest}")
            with suppress(Conflict):  # another worker on this machine unpacked it first
                unpack(name, folder)
        finally:
            os.unlink(name)
        return folder

    def put_input(self, path: Path, digest: str) -> str:
        """Upload a local input artifact, named by its digest, unless it is there; its URI."""
        key = self.key("inputs", digest_hex(digest), path.name)
        uri = self.uri(f"{key}/" if path.is_dir() else key)
        return uri if self.fingerprint(uri) else self.upload(path, key)


@dataclass(frozen=True)
class RemoteStep:
    """A step for a worker that shares no disk with the caller: the task as the caller built
    it, and where its function (by package digest) and input artifacts (by URI) are."""

    task: StepTask
    storage: S3Storage
    function: str
    inputs: dict[str, str]
    run_id: str


def execute_remote(remote: RemoteStep) -> StepOutcome:
    """Fetch, `execute_step`, upload; never raises (a transfer failure is a failed outcome)."""
    task, storage = remote.task, remote.storage
    started_at, started = utc_now(), time.monotonic()
    base = storage.key("runs", remote.run_id, task.step)

    def failed(what: str, exc: BaseException) -> StepOutcome:
        return failed_outcome(task.step, f"{what} {storage.url}: {describe(exc)}",
                              started_at=started_at, host=socket.gethostname(),
                              duration=round(time.monotonic() - started, 3))

    with tempfile.TemporaryDirectory(prefix=f"fnhub-step-{task.step}-") as tmp:
        work = Path(tmp)
        output_dir = work / "outputs"
        try:
            home = load_config().home  # this worker's own: its function cache and venvs
            folder = storage.fetch_function(remote.function, home / "cache" / "functions")
            inputs = dict(task.request["inputs"])
            for name, uri in remote.inputs.items():
                place = work / "inputs" / name / PurePosixPath(uri.rstrip("/")).name
                inputs[name] = str(storage.download(uri, place))
        except (FnhubError, *TRANSFER_ERRORS) as exc:
            return failed("fetching the function and inputs from", exc)
        request = {**task.request, "folder": str(folder), "inputs": inputs,
                   "output_dir": str(output_dir)}
        outcome = execute_step(replace(task, request=request, step_dir=str(work),
                                       env=task.env.on_host(home)))
        try:
            log = Path(outcome.log)
            outcome.log = storage.upload(log, f"{base}/log.txt") if log.is_file() else ""
            outcome.outputs = {
                name: storage.upload(Path(value), f"{base}/outputs/"
                                     + Path(value).relative_to(output_dir).as_posix())
                if name in outcome.digests else value
                for name, value in outcome.outputs.items()}
        except TRANSFER_ERRORS as exc:
            return failed("uploading the outputs to", exc)
    outcome.started_at, outcome.finished_at = started_at, utc_now()
    outcome.duration = round(time.monotonic() - started, 3)
    return outcome

