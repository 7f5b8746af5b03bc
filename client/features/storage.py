"""Where the offline store lives: a local folder or `s3://bucket/prefix`, through pyarrow's
filesystems, so the same code writes, lists and reads both.

Only whole objects are ever made visible: small documents (commit files, the registry) are
written under a temporary name and moved into place (a rename locally, a single PUT on S3).
"""

from __future__ import annotations

import json
import os
import uuid
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow.dataset as pads
import pyarrow.fs as pafs

from fnhub.core.errors import InvalidInput, NotFound

# How every Parquet dataset here is read. Arrow's default pre-buffering fetches the ranges of
# all the row groups a scan asks for up front and keeps them until the scan ends: a 10M-row
# (1 GB) file was held whole in memory while it streamed (ingest peaked at 1.9 GB). Without
# it, memory stays at the row groups being decoded.
PARQUET = pads.ParquetFileFormat(
    default_fragment_scan_options=pads.ParquetFragmentScanOptions(pre_buffer=False))


@dataclass(frozen=True)
class Location:
    """A filesystem and the root path of the store in it (no trailing slash)."""

    fs: pafs.FileSystem
    root: str
    url: str  # as the user gave it, for messages

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def write_bytes(self, path: str, data: bytes) -> None:
        """Make `data` appear at `path` whole, or not at all."""
        parent = path.rsplit("/", 1)[0]
        self.fs.create_dir(parent, recursive=True)
        temp = f"{parent}/.tmp-{uuid.uuid4().hex}"
        try:
            with self.fs.open_output_stream(temp) as out:
                out.write(data)
            self.fs.move(temp, path)
        except BaseException:
            self.delete(temp)
            raise

    def write_json(self, path: str, data: Any) -> None:
        self.write_bytes(path, json.dumps(data, sort_keys=True, indent=1).encode())

    def read_json(self, path: str) -> Any:
        try:
            with self.fs.open_input_stream(path) as fh:
                return json.loads(fh.read())
        except FileNotFoundError:
            raise NotFound(f"{self.url}: no {path.removeprefix(self.root + '/')}") from None
        except (ValueError, OSError) as exc:
            raise InvalidInput(f"{self.url}: cannot read {path}: {exc}") from None

    def stamp(self, path: str) -> tuple[int, ...] | None:
        """What identifies this version of a local file (inode, times, size: an atomic
        replace gives a new inode), so a reader can keep what it parsed until it changes;
        None on S3 (no cheap check) or when the file is missing."""
        if not isinstance(self.fs, pafs.LocalFileSystem):
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size

    def local_paths(self, paths: list[str]) -> list[str] | None:
        """`paths` as paths of this machine's filesystem (for readers other than pyarrow's),
        or None for a store on S3."""
        return list(paths) if isinstance(self.fs, pafs.LocalFileSystem) else None

    def list(self, folder: str, suffix: str = "") -> list[str]:
        """The files directly in `folder` whose names end with `suffix`, sorted; [] if none."""
        selector = pafs.FileSelector(folder, allow_not_found=True, recursive=False)
        return sorted(info.path for info in self.fs.get_file_info(selector)
                      if info.type == pafs.FileType.File and info.path.endswith(suffix)
                      and not info.base_name.startswith(".tmp-"))

    def walk(self, folder: str) -> list[str]:
        """Every file under `folder`, sorted (tests and `hub features list` use it)."""
        selector = pafs.FileSelector(folder, allow_not_found=True, recursive=True)
        return sorted(i.path for i in self.fs.get_file_info(selector)
                      if i.type == pafs.FileType.File)

    def delete(self, path: str) -> None:
        with suppress(OSError):  # FileNotFoundError included
            self.fs.delete_file(path)


def _s3(url: str) -> Location:
    parts = urlsplit(url)
    if not parts.netloc:
        raise InvalidInput(f"invalid offline store {url!r}: expected s3://BUCKET[/PREFIX]")
    endpoint = os.environ.get("FNHUB_FEATURES_S3_ENDPOINT_URL") or os.environ.get(
        "AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    options: dict[str, Any] = {"region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    if endpoint:
        endpoint_parts = urlsplit(endpoint)
        options |= {"endpoint_override": endpoint_parts.netloc or endpoint,
                    "scheme": endpoint_parts.scheme or "https"}
    root = f"{parts.netloc}/{parts.path.strip('/')}".rstrip("/")
    return Location(pafs.S3FileSystem(**options), root, url)


def open_location(url: str | Path) -> Location:
    """`s3://bucket/prefix`, `file:///path` or a plain path (created when missing)."""
    text = os.fspath(url)
    if text.startswith("s3://"):
        return _s3(text)
    if "://" in text and not text.startswith("file://"):
        raise InvalidInput(f"unsupported offline store {text!r}: use a folder, file:// or s3://")
    path = Path(text.removeprefix("file://")).expanduser().absolute()
    path.mkdir(parents=True, exist_ok=True)
    return Location(pafs.LocalFileSystem(), path.as_posix().rstrip("/") or "/", text)
