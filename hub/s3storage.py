"""Blobs in an S3 bucket (`FNHUB_SERVER_STORAGE_URL=s3://bucket/prefix`), for hub replicas.

Uploads are staged exactly as on disk: streamed into a local temporary file, hashed and
counted, so memory stays bounded and PayloadTooLarge stops them early. `commit` then hands the
file to boto3's managed transfer, which sends it as a multipart upload in parts of
`part_size` (a few parts in flight at once), to `<prefix>sha256/ab/<hex>`; content already
stored is not sent again. Nothing lasting is kept on local disk: an OCI upload session is a
multipart upload of `<prefix>uploads/<session>/blob`, its chunks sent as parts as they
arrive (a remainder under S3's 5 MiB minimum waits in a tail object for the next chunk), so
another replica can go on with the session or close it; closing completes the upload
inside S3 and hashes it once, and committing copies it inside the bucket. Expiring a
session aborts the upload and deletes its objects; `hub admin gc` removes what a crashed
replica left (the store's `leftovers()`). The sessions' side is `S3UploadParts`.

A failing S3 (unreachable, refusing, its bucket gone) raises StorageUnavailable naming the
failure, as every backend does (`s3_problem`).

Endpoint from `FNHUB_SERVER_S3_ENDPOINT_URL` (MinIO, moto, ...); region and credentials from
the standard `AWS_*` variables and files, as boto3 reads them.
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from boto3.exceptions import S3TransferFailedError, S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from fnhub.core.errors import InvalidInput, NotFound, PayloadTooLarge
from fnhub.core.packaging import HashingWriter, digest_hex
from fnhub.hub.storage import (
    CHUNK_SIZE,
    BlobEntry,
    BlobStore,
    Leftover,
    Staged,
    StagingWriter,
    StorageBackend,
    new_writer,
    read_chunks,
    read_path,
    staging_leftovers,
    storage_problem,
)
from fnhub.hub.upload_parts import Part, UploadSession

MiB = 1 << 20
_BLOB_KEY = re.compile(r"sha256/[0-9a-f]{2}/([0-9a-f]{64})")
MIN_PART_SIZE = 5 * MiB  # S3's smallest part, but for the last
MAX_COPY_SIZE = 5 * 1024 * MiB  # the largest object one CopyObject copies
UPLOAD_CONCURRENCY = 4
EMPTY_DIGEST = "sha256:" + hashlib.sha256(b"").hexdigest()
_MISSING = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchUpload"})
_UNUSABLE_PARTS = frozenset({"InvalidPart", "InvalidPartOrder", "EntityTooSmall"})
_MPU = "mpu:"  # locator of a multipart-upload part: mpu:<number>:<etag>


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _MISSING


def s3_problem(exc: BaseException | None) -> str | None:
    """A short reason when `exc` is S3 (or the local staging disk) failing; no endpoint,
    bucket key or path, those go to the log."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"S3 answered {error.get('Code', 'an error')}: {error.get('Message', '')}"
    if isinstance(exc, BotoCoreError):
        return f"S3 request failed ({type(exc).__name__})"
    if isinstance(exc, (S3UploadFailedError, S3TransferFailedError)):
        return s3_problem(exc.__context__) or "S3 transfer failed"
    return storage_problem(exc) if exc is not None else None


class S3BlobStore(BlobStore):
    """Blobs as objects `<prefix>sha256/ab/<hex>` in `bucket`; staging in local `staging`."""

    def __init__(self, bucket: str, prefix: str, staging: Path, *,
                 endpoint_url: str | None = None, part_size: int = 8 * MiB,
                 presign_ttl: int = 300) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.staging = staging
        self.staging.mkdir(parents=True, exist_ok=True)
        self._presign_ttl = presign_ttl
        self.part_size = max(part_size, MIN_PART_SIZE)
        self.client: Any = boto3.client(
            "s3", endpoint_url=endpoint_url,
            config=Config(signature_version="s3v4", retries={"mode": "standard"},
                          s3={"addressing_style": "path"} if endpoint_url else None))
        # Bounded memory: parts are read from the staged file as they are sent, 4 at a time.
        self.transfer = TransferConfig(multipart_threshold=part_size,
                                        multipart_chunksize=part_size,
                                        max_concurrency=UPLOAD_CONCURRENCY)

    problem = staticmethod(s3_problem)

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
        return new_writer(self.staging, max_size)

    def _upload(self, path: Path, key: str) -> None:
        self.client.upload_file(str(path), self.bucket, key, Config=self.transfer)

    def commit(self, staged: Staged) -> None:
        """Upload the staged file (multipart when large), unless the blob is stored already."""
        try:
            if not self.exists(staged.digest):
                self._upload(staged.path, self.key(staged.digest))
        finally:
            staged.path.unlink(missing_ok=True)

    def stream(self, key: str, chunk_size: int, start: int, what: str) -> Iterator[bytes]:
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
        return self.stream(self.key(digest), chunk_size, start, f"blob {digest}")

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
        self.delete_key(self.key(digest))

    def delete_key(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            yield from page.get("Contents", [])

    def listing(self) -> Iterator[BlobEntry]:
        for obj in self.objects(f"{self.prefix}sha256/"):
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

    def upload_key(self, session: str, leaf: str) -> str:
        """The object `leaf` of upload session `session`."""
        return f"{self.prefix}uploads/{session}/{leaf}"

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Abort a multipart upload (one completed or aborted already is no error)."""
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if not _missing(exc):
                raise

    def leftovers(self) -> Iterator[Leftover]:
        """Upload sessions' objects (held by their session), multipart uploads (sessions',
        held by their handle, and blob commits' that never completed), local staging."""
        base = f"{self.prefix}uploads/"
        for obj in self.objects(base):
            key = obj["Key"]
            yield Leftover(f"s3://{self.bucket}/{key}", obj["LastModified"].timestamp(),
                           key[len(base):].partition("/")[0], partial(self.delete_key, key))
        for upload in self._multipart_uploads():
            key, upload_id = upload["Key"], upload["UploadId"]
            yield Leftover(f"multipart upload of s3://{self.bucket}/{key}",
                           upload["Initiated"].timestamp(), upload_id,
                           partial(self.abort_upload, key, upload_id))
        yield from staging_leftovers(self.staging, held=False)

    def _multipart_uploads(self) -> Iterator[dict[str, Any]]:
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            yield from page.get("Uploads", [])


class S3UploadParts(StorageBackend):
    """Upload sessions as S3 multipart uploads of `<prefix>uploads/<session>/blob`, which
    every replica reaches; a small remainder waits in a tail object."""

    problem = staticmethod(s3_problem)

    def __init__(self, store: S3BlobStore) -> None:
        self.store = store
        self.client = store.client
        self.bucket = store.bucket

    def _session_key(self, session: UploadSession, leaf: str) -> str:
        return self.store.upload_key(session.name, leaf)

    def open_session(self, name: str) -> str | None:
        """A multipart upload of the session's blob; its UploadId is the handle."""
        key = self._session_key(UploadSession(name), "blob")
        return self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]

    def add_part(self, session: UploadSession, parts: list[Part],
                 staged: Staged) -> tuple[list[Part], list[Part]]:
        """Full pieces of `part_size` (and a remainder of at least S3's 5 MiB minimum) become
        parts of the session's multipart upload; a smaller remainder waits in a *tail*
        object, which the next chunk absorbs (S3 accepts a small part only as the last)."""
        absorbed = [parts[-1]] if parts and not _is_mpu_part(parts[-1]) else []
        if absorbed:
            merged = self.store.stage(chain(self.store.stream(absorbed[0].locator, CHUNK_SIZE, 0,
                                                   "the upload's last chunk"),
                                      read_path(staged.path)))
            staged.path.unlink(missing_ok=True)
            staged = merged
        number = max((_part_number(p) for p in parts if _is_mpu_part(p)), default=0)
        pieces = [(offset, min(self.store.part_size, staged.size - offset))
                  for offset in range(0, staged.size, self.store.part_size)]
        tail = pieces.pop() if pieces and pieces[-1][1] < MIN_PART_SIZE else None
        try:  # parts go a few at a time, each read through its own handle on the file
            with ThreadPoolExecutor(max_workers=UPLOAD_CONCURRENCY) as pool:
                added = list(pool.map(
                    lambda numbered: self._put_piece(session, staged.path, numbered[1],
                                                     numbered[0]),
                    enumerate(pieces, start=number + 1)))
            if tail:
                added.append(self._put_piece(session, staged.path, tail, None))
        finally:
            staged.path.unlink(missing_ok=True)
        return added, absorbed

    def _put_piece(self, session: UploadSession, path: Path, piece: tuple[int, int],
                   number: int | None) -> Part:
        """`piece` (offset, size) of the staged file: part `number` of the session's
        multipart upload, or (no number) a tail object."""
        offset, size = piece
        with path.open("rb") as fh:
            digest = _slice_digest(fh, offset, size)
            fh.seek(offset)
            if number is None:
                key = self._session_key(session, f"tail-{uuid.uuid4().hex}")
                self.client.put_object(Bucket=self.bucket, Key=key, ContentLength=size,
                                       Body=_Slice(fh, size))
                return Part(key, digest, size)
            etag = self.client.upload_part(
                Bucket=self.bucket, Key=self._session_key(session, "blob"),
                UploadId=session.handle, PartNumber=number, ContentLength=size,
                Body=_Slice(fh, size))["ETag"]
        return Part(f"{_MPU}{number}:{etag}", digest, size)

    def drop_parts(self, session: UploadSession, parts: list[Part]) -> None:
        """Tail objects are deleted; multipart parts go with their upload's completion."""
        for part in parts:
            if not _is_mpu_part(part):
                self.store.delete_key(part.locator)

    def close_session(self, session: UploadSession, parts: list[Part], *,
                      digest: str | None = None, max_size: int | None = None) -> Part:
        """Complete the multipart upload (a tail becomes its last part, copied inside the
        bucket); unless the digest is known, hash the result by reading it once. Nothing is
        uploaded again."""
        if not parts:
            key = self._session_key(session, "empty")
            self.client.put_object(Bucket=self.bucket, Key=key, Body=b"")
            return Part(key, EMPTY_DIGEST, 0)
        if len(parts) == 1 and not _is_mpu_part(parts[0]):
            return parts[0]
        numbered = [(_part_number(p), p.locator.rpartition(":")[2]) for p in parts[:-1]]
        last = parts[-1]
        key = self._session_key(session, "blob")
        try:
            if _is_mpu_part(last):
                numbered.append((_part_number(last), last.locator.rpartition(":")[2]))
            else:
                copied = self.client.upload_part_copy(
                    Bucket=self.bucket, Key=key, UploadId=session.handle,
                    PartNumber=numbered[-1][0] + 1,
                    CopySource={"Bucket": self.bucket, "Key": last.locator})
                numbered.append((numbered[-1][0] + 1, copied["CopyPartResult"]["ETag"]))
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=session.handle,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag}
                                           for n, etag in numbered]})
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in _MISSING or code in _UNUSABLE_PARTS:
                raise NotFound(f"the upload's parts cannot be assembled ({code})") from None
            raise
        size = sum(part.size for part in parts)
        if digest or len(parts) == 1:
            return Part(key, digest or parts[0].digest, size)
        hashing = HashingWriter()
        for chunk in self.store.stream(key, 1 * MiB, 0, "the assembled upload"):
            if max_size is not None and hashing.size + len(chunk) > max_size:
                raise PayloadTooLarge(f"upload is larger than the limit of {max_size} bytes")
            hashing.write(chunk)
        return Part(key, hashing.digest, hashing.size)

    def commit_part(self, part: Part) -> None:
        """A copy inside the bucket: no bytes pass the hub. One CopyObject up to S3's 5 GiB
        limit for it, a multipart copy beyond."""
        if self.store.exists(part.digest):
            return
        source = {"Bucket": self.bucket, "Key": part.locator}
        target = self.store.key(part.digest)
        if part.size <= MAX_COPY_SIZE:
            self.client.copy_object(CopySource=source, Bucket=self.bucket, Key=target)
        else:
            self.client.copy(source, self.bucket, target, Config=self.store.transfer)

    def abort_session(self, session: UploadSession, parts: list[Part]) -> None:
        """Abort the multipart upload and delete the session's objects (tail, blob)."""
        if session.handle:
            self.store.abort_upload(self._session_key(session, "blob"), session.handle)
        for obj in self.store.objects(self._session_key(session, "")):
            self.store.delete_key(obj["Key"])


def _is_mpu_part(part: Part) -> bool:
    return part.locator.startswith(_MPU)


def _part_number(part: Part) -> int:
    return int(part.locator[len(_MPU):].partition(":")[0])


def _slice_digest(fh: BinaryIO, offset: int, size: int) -> str:
    fh.seek(offset)
    hashing = HashingWriter()
    for chunk in read_chunks(fh, size=size):
        hashing.write(chunk)
    return hashing.digest


def _chunks(body: Any, chunk_size: int) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(chunk_size)
    finally:
        body.close()


class _Slice(io.RawIOBase):
    """`size` bytes of `fh` from its current position, as a stream of their own that boto3
    may read, rewind and read again (checksums, retries) without buffering them."""

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self._fh, self._start, self._size = fh, fh.tell(), size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._fh.tell() - self._start

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.tell(), io.SEEK_END: self._size}[whence]
        self._fh.seek(self._start + min(max(base + offset, 0), self._size))
        return self.tell()

    def read(self, size: int | None = -1) -> bytes:
        left = self._size - self.tell()
        return self._fh.read(left if size is None or size < 0 else min(size, left))
