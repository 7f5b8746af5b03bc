"""Structured logs: request ids (echoed, generated, sanitised) and one JSON object per line."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from fnhub.hub.logs import JsonFormatter, access_log, request_id

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    """The access log as the hub writes it: JSON lines."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    access_log.addHandler(handler)
    level = access_log.level
    access_log.setLevel(logging.INFO)
    yield out
    access_log.removeHandler(handler)
    access_log.setLevel(level)


def _lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_sane_request_id_is_echoed_and_logged(client: TestClient,
                                                access_lines: io.StringIO) -> None:
    response = client.get("/api/v1/functions", headers={"X-Request-ID": "abc-123.x"})
    assert response.headers["X-Request-ID"] == "abc-123.x"
    [line] = _lines(access_lines)
    assert line["request_id"] == "abc-123.x"
    assert (line["logger"], line["level"], line["method"], line["path"], line["status"]) == (
        "fnhub.hub.access", "info", "GET", "/api/v1/functions", 200)
    assert line["message"] == "GET /api/v1/functions 200" and line["duration_ms"] >= 0


@pytest.mark.parametrize("sent", [None, "has spaces", "x" * 200, "<script>", "a\tb"])
def test_otherwise_the_hub_makes_one(client: TestClient, access_lines: io.StringIO,
                                     sent: str | None) -> None:
    headers = {"X-Request-ID": sent} if sent else {}
    response = client.get("/api/v1/nope", headers=headers)
    assert response.status_code == 404
    rid = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert _lines(access_lines)[0]["request_id"] == rid


def test_formatter_stamps_the_current_request_and_exceptions() -> None:
    token = request_id.set("req-7")
    try:
        record = logging.LogRecord("fnhub.hub", logging.ERROR, __file__, 1, "failed %s", ("x",),
                                   None)
        try:
            raise ValueError("boom")
        except ValueError:
            record.exc_info = sys.exc_info()
        entry = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(token)
    assert (entry["request_id"], entry["level"], entry["message"]) == ("req-7", "error",
                                                                       "failed x")
    assert "ValueError: boom" in entry["exc"]
    plain = json.loads(JsonFormatter().format(logging.LogRecord(
        "fnhub", logging.INFO, __file__, 1, "hello", (), None)))
    assert "request_id" not in plain and plain["message"] == "hello"
