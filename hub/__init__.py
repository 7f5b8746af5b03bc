"""fnhub.hub: the registry server (FastAPI). `create_app` builds it, `serve` runs it.

Layout: `services/` holds the work (plain functions over a `Hub` context, usable without
HTTP); `api/` holds thin route handlers; `models.py` and `migrations/` the schema;
`storage.py` the content-addressed package blobs.
"""
