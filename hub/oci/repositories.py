"""The registry's repositories: found by name, created on a caller's first push into a
namespace they may push into, and listed (`/v2/_catalog`)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fnhub.hub.context import Hub
from fnhub.hub.oci.errors import NameUnknown
from fnhub.hub.oci.models import OciRepository
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


def page_size(n: int | None) -> int:
    """A page of `n` entries at most, never more than MAX_PAGE."""
    return MAX_PAGE if n is None else min(n, MAX_PAGE)


def catalog(hub: Hub, n: int | None, last: str | None) -> tuple[list[str], bool]:
    limit = page_size(n)
    if not limit:
        return [], False
    with hub.db.read() as session:
        query = select(OciRepository.name)
        if last:
            query = query.where(col(OciRepository.name) > last)
        names = list(session.exec(
            query.order_by(col(OciRepository.name)).limit(limit + 1)).all())
    return names[:limit], len(names) > limit
