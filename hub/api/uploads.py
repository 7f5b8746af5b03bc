"""Streaming parse of the publish form (multipart: `manifest`, `envelope`, `package`).

Starlette's own form parser spools whole files before a handler runs, without a size
limit. Here the `package` part goes straight into blob staging, hashed and cut off at the
hub's size limit (413) while it arrives; the two text fields are held in memory, 1 MiB each
at most. When `manifest` arrives before `package` (as the fnhub client sends it), it is
checked before a single package byte is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from fnhub.core.errors import InvalidInput, PayloadTooLarge
from fnhub.hub.storage import BlobStore, Staged, StagingWriter

TEXT_FIELDS = ("manifest", "envelope")
PACKAGE_FIELD = "package"
MAX_TEXT_FIELD = 1 << 20
_FORM_OVERHEAD = 64 * 1024  # part headers and boundaries


@dataclass(frozen=True)
class PublishForm:
    manifest: str
    envelope: str
    package: Staged


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    data: bytearray = field(default_factory=bytearray)


class _FormReader:
    """python-multipart callbacks; package bytes are queued, then written off the event loop."""

    def __init__(self, writer: StagingWriter, on_manifest: Callable[[str], object]) -> None:
        self.writer = writer
        self.on_manifest = on_manifest
        self.texts: dict[str, str] = {}
        self.package_seen = False
        self.pending: list[bytes] = []
        self._part = _Part()
        self._header_name = b""
        self._header_value = b""

    def on_part_begin(self) -> None:
        self._part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._part.headers[self._header_name.lower()] = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._part.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name not in (*TEXT_FIELDS, PACKAGE_FIELD):
            raise InvalidInput(
                f"unexpected form field {name!r}: send manifest, envelope and package"
            )
        if name in self.texts or (name == PACKAGE_FIELD and self.package_seen):
            raise InvalidInput(f"form field {name!r} is sent twice")
        self._part.name = name
        if name == PACKAGE_FIELD:
            self.package_seen = True
            if "manifest" in self.texts:
                self.on_manifest(self.texts["manifest"])

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part.name == PACKAGE_FIELD:
            self.pending.append(data[start:end])
            return
        if len(self._part.data) + (end - start) > MAX_TEXT_FIELD:
            raise PayloadTooLarge(f"form field {self._part.name!r} is larger than 1 MiB")
        self._part.data += data[start:end]

    def on_part_end(self) -> None:
        if self._part.name in TEXT_FIELDS:
            try:
                self.texts[self._part.name] = self._part.data.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"form field {self._part.name!r} is not UTF-8 text") from None

    def flush(self) -> None:
        """Write the queued package bytes into staging (runs in a worker thread)."""
        for chunk in self.pending:
            self.writer.write(chunk)
        self.pending.clear()


def _boundary(request: Request) -> bytes:
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not options.get(b"boundary"):
        raise InvalidInput(
            "publishing expects a multipart/form-data body with fields manifest, envelope "
            "and package"
        )
    return options[b"boundary"]


async def read_publish_form(request: Request, store: BlobStore, max_size: int,
                            on_manifest: Callable[[str], object]) -> PublishForm:
    """Parse the upload, streaming `package` into staging; nothing is left behind on error."""
    boundary = _boundary(request)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_size + 2 * MAX_TEXT_FIELD + _FORM_OVERHEAD:
        raise PayloadTooLarge(f"upload of {length} bytes is larger than the hub accepts")
    writer = await run_in_threadpool(store.writer, max_size)
    try:
        reader = _FormReader(writer, on_manifest)
        parser = MultipartParser(boundary, {
            "on_part_begin": reader.on_part_begin,
            "on_part_data": reader.on_part_data,
            "on_part_end": reader.on_part_end,
            "on_header_field": reader.on_header_field,
            "on_header_value": reader.on_header_value,
            "on_header_end": reader.on_header_end,
            "on_headers_finished": reader.on_headers_finished,
        })
        try:
            async for chunk in request.stream():
                parser.write(chunk)
                if reader.pending:
                    await run_in_threadpool(reader.flush)
            parser.finalize()
        except FormParserError as exc:
            raise InvalidInput(f"malformed multipart body: {exc}") from None
        except ClientDisconnect:
            raise InvalidInput("the client disconnected during the upload") from None
        missing = [n for n in (*TEXT_FIELDS, PACKAGE_FIELD)
                   if n not in reader.texts and not (n == PACKAGE_FIELD and reader.package_seen)]
        if missing:
            raise InvalidInput(f"publish form lacks field(s): {', '.join(missing)}")
        staged = await run_in_threadpool(writer.finish)
    except BaseException:
        writer.abort()  # not awaited: it must also run when the request is cancelled
        raise
    return PublishForm(manifest=reader.texts["manifest"], envelope=reader.texts["envelope"],
                       package=staged)
