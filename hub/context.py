"""The hub's runtime context: what every service needs, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from fnhub.hub.db import Database
from fnhub.hub.settings import ServerSettings
from fnhub.hub.storage import BlobStore, FileBlobStore


@dataclass
class Hub:
    """Settings, database and blob store; services take it as their first argument."""

    settings: ServerSettings
    db: Database
    store: BlobStore

    @classmethod
    def open(cls, settings: ServerSettings) -> Hub:
        """Create the data dir, migrate the database to the newest schema, open storage."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = FileBlobStore(settings.storage_path())
        db = Database(settings.database_url, settings.pool_options())
        db.migrate()
        return cls(settings=settings, db=db, store=store)

    def close(self) -> None:
        self.db.dispose()
