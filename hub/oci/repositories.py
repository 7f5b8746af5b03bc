"""The registry's repositories: found by name, created on a caller's first push into a
namespace they may push into, and listed (`/v2/_catalog`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fnhub.hub.context import Hub
from fnhub.hub.oci.errors import NameUnknown
from fnhub.hub.oci.models import OciBlobLink, OciManifest, OciRepository, OciUpload
from fnhub.hub.oci.names import check_repository, namespace_of
from fnhub.hub.services import namespaces
from fnhub.hub.services.auth import Caller

MAX_PAGE = 1000


def find(session: Session, name: str) -> OciRepository | None:
    """The repository named `name`, if it exists."""
    return session.exec(select(OciRepository).where(OciRepository.name == name)).first()


def existing(session: Session, name: str) -> OciRepository:
    """The repository named `name`; NAME_UNKNOWN when it does not exist."""
    repository = find(session, name)
    if repository is None:
        raise NameUnknown(f"repository {name} is not known to this registry")
    return repository


def writable(session: Session, caller: Caller, name: str) -> OciRepository:
    """The repository, created on first push, once the caller may push into its namespace."""
    namespace = namespaces.authorize(session, caller, namespace_of(name), create=True)
    assert namespace is not None and namespace.id is not None
    repository = find(session, name)
    if repository is not None:
        return repository
    try:
        with session.begin_nested():
            repository = OciRepository(name=name, namespace_id=namespace.id)
            session.add(repository)
            session.flush()
    except IntegrityError:
        return existing(session, name)
    return repository


def check_push(hub: Hub, caller: Caller, repository: str) -> None:
    """Fail before receiving any bytes when the caller could not push into `repository`."""
    check_repository(repository)
    with hub.db.read() as session:
        namespaces.authorize(session, caller, namespace_of(repository), create=False)


def has_content() -> Any:
    """SQL: the repository holds a manifest or a blob (an upload in progress is not content)."""
    return or_(
        exists().where(OciManifest.repository_id == OciRepository.id),
        exists().where(OciBlobLink.repository_id == OciRepository.id),
    )


def drop_if_empty(session: Session, repository_id: int | None) -> None:
    """Delete the repository once nothing is in it or on its way into it, so no repository
    row is left without content (a push that fell back from a mount and was abandoned, or
    whose last blob or manifest was deleted). The row is locked first: a concurrent writer
    adding to it either commits before (and keeps it) or after (and finds it gone)."""
    session.flush()
    row = session.exec(select(OciRepository).where(OciRepository.id == repository_id)
                       .with_for_update()).first()
    if row is None:
        return
    pending = exists().where(OciUpload.repository_id == OciRepository.id)
    busy = session.exec(select(OciRepository.id).where(
        OciRepository.id == repository_id, or_(has_content(), pending))).first()
    if busy is None:
        session.delete(row)


def page_size(n: int | None) -> int:
    """A page of `n` entries at most, never more than MAX_PAGE."""
    return MAX_PAGE if n is None else min(n, MAX_PAGE)


def catalog(hub: Hub, n: int | None, last: str | None) -> tuple[list[str], bool]:
    limit = page_size(n)
    if not limit:
        return [], False
    with hub.db.read() as session:
        query = select(OciRepository.name).where(has_content())
        if last:
            query = query.where(col(OciRepository.name) > last)
        names = list(session.exec(
            query.order_by(col(OciRepository.name)).limit(limit + 1)).all())
    return names[:limit], len(names) > limit
