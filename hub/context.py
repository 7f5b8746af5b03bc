"""The hub's runtime context: what every service needs, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fnhub.hub.db import Database
from fnhub.hub.settings import ServerSettings
from fnhub.hub.storage import BlobStore, FileBlobStore


def open_store(settings: ServerSettings) -> BlobStore:
    """The blob store `storage_url` names: a folder, or an S3 bucket staged via the data dir."""
    location = settings.s3_location()
    if location is None:
        return FileBlobStore(settings.storage_path())
    from fnhub.hub.s3storage import S3BlobStore  # boto3 is needed only with S3

    bucket, prefix = location
    store = S3BlobStore(bucket, prefix, settings.data_dir / "staging",
                        endpoint_url=settings.s3_endpoint_url, part_size=settings.s3_part_size,
                        presign_ttl=settings.s3_presign_ttl)
    store.check()
    return store


@dataclass
class Hub:
    """Settings, database and blob store; services take it as their first argument."""

    settings: ServerSettings
    db: Database
    store: BlobStore
    index_key: Ed25519PrivateKey | None = None  # signs function indexes; loaded by the app

    @classmethod
    def open(cls, settings: ServerSettings) -> Hub:
        """Create the data dir, migrate the database to the newest schema, open storage."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = open_store(settings)
        db = Database(settings.database_url, settings.pool_options())
        db.migrate()
        return cls(settings=settings, db=db, store=store)

    def close(self) -> None:
        self.db.dispose()
