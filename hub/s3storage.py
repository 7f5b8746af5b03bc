"""Blobs in an S3 bucket (`FNHUB_SERVER_STORAGE_URL=s3://bucket/prefix`), for hub replicas.

Uploads are staged exactly as on disk: streamed into a local temporary file, hashed and
counted, so memory stays bounded and PayloadTooLarge stops them early. `commit` then hands the
file to boto3's managed transfer, which sends it as a multipart upload in parts of
`part_size` (a few parts in flight at once), to `<prefix>sha256/ab/<hex>`; content already
stored is not sent again. Nothing lasting is kept on local disk: the received chunks of an
OCI upload session become objects under `<prefix>uploads/<session>/`, so another replica
can finish the session, and expiring a session deletes them.

Endpoint from `FNHUB_SERVER_S3_ENDPOINT_URL` (MinIO, moto, ...); region and credentials from
the standard `AWS_*` variables and files, as boto3 reads them.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from fnhub.errors import InvalidInput, NotFound
from fnhub.hub.storage import CHUNK_SIZE, BlobEntry, BlobStore, Part, Staged, StagingWriter
from fnhub.packaging import digest_hex

MiB = 1 << 20
_BLOB_KEY = re.compile(r"sha256/[0-9a-f]{2}/([0-9a-f]{64})")
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _MISSING


class S3BlobStore(BlobStore):
    """Blobs as objects `<prefix>sha256/ab/<hex>` in `bucket`; staging in local `staging`."""

    def __init__(self, bucket: str, prefix: str, staging: Path, *,
                 endpoint_url: str | None = None, part_size: int = 8 * MiB,
                 presign_ttl: int = 300) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._staging = staging
        self._staging.mkdir(parents=True, exist_ok=True)
        self._presign_ttl = presign_ttl
        self.client: Any = boto3.client(
            "s3", endpoint_url=endpoint_url,
            config=Config(signature_version="s3v4", retries={"mode": "standard"},
                          s3={"addressing_style": "path"} if endpoint_url else None))
        # Bounded memory: parts are read from the staged file as they are sent, 4 at a time.
        self._transfer = TransferConfig(multipart_threshold=part_size,
                                        multipart_chunksize=part_size, max_concurrency=4)

    def check(self) -> None:
        """Fail at startup, clearly, when the bucket cannot be reached with these settings."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            where = self.client.meta.endpoint_url
            raise InvalidInput(f"S3 bucket {self.bucket!r} at {where} is not usable: {exc}",
                               hint="check FNHUB_SERVER_STORAGE_URL, "
                                    "FNHUB_SERVER_S3_ENDPOINT_URL and the AWS_* credentials"
                               ) from None

    def key(self, digest: str) -> str:
        hex_part = digest_hex(digest)
        return f"{self.prefix}sha256/{hex_part[:2]}/{hex_part}"

    def writer(self, max_size: int | None = None) -> StagingWriter:
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".partial", dir=self._staging)
        return StagingWriter(os.fdopen(fd, "wb"), Path(name), max_size)

    def _upload(self, path: Path, key: str) -> None:
        self.client.upload_file(str(path), self.bucket, key, Config=self._transfer)

    def commit(self, staged: Staged) -> None:
        """Upload the staged file (multipart when large), unless the blob is stored already."""
        try:
            if not self.exists(staged.digest):
                self._upload(staged.path, self.key(staged.digest))
        finally:
            staged.path.unlink(missing_ok=True)

    def _stream(self, key: str, chunk_size: int, start: int, what: str) -> Iterator[bytes]:
        """The object's bytes from `start`; the GET is sent now, so NotFound comes early."""
        extra = {"Range": f"bytes={start}-"} if start else {}
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key, **extra)["Body"]
        except ClientError as exc:
            if _missing(exc):
                raise NotFound(f"{what} is not in storage") from None
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return iter(())
            raise
        return _chunks(body, chunk_size)

    def open(self, digest: str, chunk_size: int = CHUNK_SIZE, start: int = 0) -> Iterator[bytes]:
        return self._stream(self.key(digest), chunk_size, start, f"blob {digest}")

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise

    def exists(self, digest: str) -> bool:
        return self._head(self.key(digest)) is not None

    def size(self, digest: str) -> int:
        head = self._head(self.key(digest))
        if head is None:
            raise NotFound(f"blob {digest} is not in storage")
        return int(head["ContentLength"])

    def delete(self, digest: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(digest))

    def _objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            yield from page.get("Contents", [])

    def listing(self) -> Iterator[BlobEntry]:
        for obj in self._objects(f"{self.prefix}sha256/"):
            match = _BLOB_KEY.fullmatch(obj["Key"][len(self.prefix):])
            if match:
                yield BlobEntry(f"sha256:{match[1]}", int(obj["Size"]),
                                obj["LastModified"].timestamp())

    def download_url(self, digest: str, filename: str) -> str | None:
        """A presigned GET, valid for `presign_ttl` seconds, that saves as `filename`."""
        return self.client.generate_presigned_url(
            "get_object", ExpiresIn=self._presign_ttl,
            Params={"Bucket": self.bucket, "Key": self.key(digest),
                    "ResponseContentDisposition": f'attachment; filename="{filename}"'})

    # -- parts of upload sessions: objects every replica reaches ---------------------------

    def save_part(self, staged: Staged, name: str) -> str:
        key = f"{self.prefix}uploads/{name}"
        try:
            self._upload(staged.path, key)
        finally:
            staged.path.unlink(missing_ok=True)
        return key

    def read_part(self, locator: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        return self._stream(locator, chunk_size, 0, f"upload part {locator}")

    def commit_part(self, part: Part) -> None:
        """A copy inside the bucket (multipart for large objects): no bytes pass the hub."""
        if not self.exists(part.digest):
            self.client.copy({"Bucket": self.bucket, "Key": part.locator}, self.bucket,
                             self.key(part.digest), Config=self._transfer)

    def drop_part(self, locator: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=locator)

    def staging(self) -> list[Path]:
        """Uploads currently in local staging."""
        return sorted(self._staging.iterdir())

    def part_names(self) -> list[str]:
        """Names of the parts stored now (`<session>/<part>`), for maintenance and tests."""
        base = f"{self.prefix}uploads/"
        return sorted(obj["Key"][len(base):] for obj in self._objects(base))


def _chunks(body: Any, chunk_size: int) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(chunk_size)
    finally:
        body.close()
