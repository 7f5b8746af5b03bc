"""What the client binds (design §5), in-process: a hub answer is held against the URI asked
for, and a verified index against the function, its freshness and the serials seen before."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import fnhub.index
from fnhub.api_client import HubClient
from fnhub.config import HubEntry, load_config
from fnhub.core.api_models import Resolution
from fnhub.core.errors import HubAnswerMismatch, StaleIndex
from fnhub.core.index import FunctionIndex, IndexVersion
from fnhub.core.uri import parse_uri
from fnhub.index import IndexReader
from fnhub.install import bind_resolution, check_version_answer, resolve_from_index

HUB = HubEntry(url="http://127.0.0.1:9")
DIGEST = "sha256:" + "ab" * 32
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)


def _resolution(**changes: object) -> Resolution:
    fields = {"namespace": "alice", "name": "scale", "version": "1.2.0", "digest": DIGEST,
              "yanked": False} | changes
    return Resolution.model_validate(fields)


@pytest.mark.parametrize(("asked", "answer", "match"), [
    ("hub://alice/scale", {"namespace": "mallory"}, "answered with mallory/scale"),
    ("hub://alice/scale", {"name": "scales"}, "answered with alice/scales"),
    ("hub://alice/scale", {"namespace": "../../../tmp/x"}, "answered with ../../../tmp/x"),
    ("hub://alice/scale:2.0.0", {}, "asked for alice/scale:2.0.0 exactly"),
    ("hub://alice/scale:==1.2.1", {}, "exactly, the hub answered version 1.2.0"),
    ("hub://alice/scale:^2", {}, "outside that range"),
    ("hub://alice/scale:1.3", {}, "outside that range"),
    ("hub://alice/scale", {"version": "2.0.0-rc.1"}, "outside that range"),  # latest: no pre
    ("hub://alice/scale", {"version": "../1.0.0"}, "malformed version"),
    ("hub://alice/scale", {"digest": "sha256:../../x"}, "malformed digest"),
    ("hub://alice/scale", {"digest": "sha256:" + "AB" * 32}, "malformed digest"),
])
def test_an_answer_other_than_asked_is_refused(asked: str, answer: dict, match: str) -> None:
    with pytest.raises(HubAnswerMismatch, match=match.replace("^", r"\^")):
        bind_resolution(HUB, parse_uri(asked), _resolution(**answer))


@pytest.mark.parametrize("asked", ["hub://alice/scale", "hub://alice/scale:1.2.0",
                                   "hub://alice/scale:^1", "hub://alice/scale:1.2",
                                   "hub://alice/scale:stable"])
def test_an_answer_within_the_request_is_bound_to_the_uri(asked: str) -> None:
    target = bind_resolution(HUB, parse_uri(asked), _resolution())
    assert (target.namespace, target.name, target.version, target.digest) == (
        "alice", "scale", "1.2.0", DIGEST)
    assert target.subject == "alice/scale@1.2.0"


def test_an_exact_pin_compares_versions_not_spellings() -> None:
    check_version_answer(parse_uri("hub://alice/scale:==1.2.0"), "1.2.0", DIGEST)


def _index(function: str = "alice/scale", serial: int = 7,
           expires: datetime = NOW + timedelta(days=1)) -> FunctionIndex:
    entry = IndexVersion(digest=DIGEST, yanked=False, deleted=False, published_at=NOW)
    deleted = IndexVersion(digest=DIGEST, yanked=False, deleted=True, published_at=NOW)
    return FunctionIndex(function=function, serial=serial, expires=expires,
                         versions={"1.2.0": entry, "1.3.0": deleted}, tags={"stable": "1.2.0"},
                         keys=["cd" * 32])


def test_the_index_resolves_ranges_and_tags_and_skips_tombstones() -> None:
    index = _index()
    for spec in ("", ":^1", ":stable", ":1.2.0"):
        target = resolve_from_index(HUB, parse_uri(f"hub://alice/scale{spec}"), index)
        assert (target.version, target.listed_keys) == ("1.2.0", ["cd" * 32])


@pytest.fixture
def reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> IndexReader:
    monkeypatch.setattr(fnhub.index, "_utcnow", lambda: NOW)
    return IndexReader(load_config(), HubClient(HUB.url))


def test_an_index_of_another_function_is_refused(reader: IndexReader) -> None:
    with pytest.raises(HubAnswerMismatch, match="answered with the signed index of mallory/scale"):
        reader._check("alice/scale", _index("mallory/scale"))


def test_an_index_expired_beyond_the_clock_skew_is_refused(reader: IndexReader) -> None:
    reader._check("alice/scale", _index(expires=NOW - timedelta(minutes=4)))  # within skew
    with pytest.raises(StaleIndex, match="expired at 2026-12-06T11:54:00Z, and this "
                                         "machine's clock says 2026-12-06T12:00:00Z"):
        reader._check("alice/scale", _index(expires=NOW - timedelta(minutes=6)))


def test_an_older_index_is_refused(reader: IndexReader) -> None:
    reader._check("alice/scale", _index(serial=7))
    reader._check("alice/scale", _index(serial=7))
    with pytest.raises(StaleIndex, match="rollback"):
        reader._check("alice/scale", _index(serial=6))
    reader._check("alice/scale", _index(serial=8))
    with pytest.raises(StaleIndex, match="serial 7, lower than serial 8"):
        reader._check("alice/scale", _index(serial=7))
