"""A hostile mirror: a real HTTP server on loopback in front of a real hub.

It forwards every request to the hub and returns the hub's answer, until a test sets
`attack`: a function that sees each request and may answer it itself (or forward another
request in its place). Tests switch a mirror from honest to malicious mid-test, the way a
compromised mirror or a network attacker in front of the hub would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-encoding",
              "content-length", "host", "accept-encoding"}


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    path: str  # with the query string
    headers: dict[str, str]
    body: bytes


Attack = Callable[[Request, "Mirror"], Answer | None]


class Mirror:
    """`url` serves what the hub at `upstream` serves, unless `attack` answers instead."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.attack: Attack | None = None
        self.seen: list[tuple[str, str, int]] = []  # (method, path, status) of each request
        self.connections = 0  # TCP connections accepted from clients
        self._http = httpx.Client(timeout=60)
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def setup(self) -> None:  # once per connection (keep-alive serves many requests)
                mirror.connections += 1
                super().setup()

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                request = Request(self.command, self.path,
                                  {k.lower(): v for k, v in self.headers.items()},
                                  self.rfile.read(length) if length else b"")
                answer = mirror.handle(request)
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def handle(self, request: Request) -> Answer:
        answer = self.attack(request, self) if self.attack else None
        if answer is None:
            answer = self.forward(request)
        self.seen.append((request.method, request.path, answer.status))
        return answer

    def forward(self, request: Request, path: str | None = None) -> Answer:
        """The hub's answer to `request` (or to the same request for another `path`)."""
        headers = {k: v for k, v in request.headers.items() if k not in HOP_BY_HOP}
        response = self._http.request(request.method, self.upstream + (path or request.path),
                                      headers=headers, content=request.body)
        return Answer(response.status_code, response.content,
                      {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP})

    def get(self, path: str) -> Answer:
        """The hub's answer to a plain GET (what an attacker records to replay later)."""
        return self.forward(Request("GET", path, {}, b""))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()
