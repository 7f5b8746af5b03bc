"""The hub's OCI registry (Distribution Spec v1.1 under `/v2/`) for function images.

It has its own router, services and tables; it shares only the content-addressed blob store
(and the namespaces, whose owners may push) with the function API. Modules:

    names           repository names, tags, digests and references, as the spec spells them
    errors          the spec's error codes, and the `{"errors": [...]}` body under `/v2/`
    manifests       parsing and checking the manifest and index media types it stores
    tokens          the Docker token flow: scopes, short-lived JWTs, who may pull and push
    repositories    finding and creating repositories, the catalog
    blobs           blobs linked into repositories: read, stored whole, mounted, unlinked
    uploads         upload sessions (chunked uploads), kept as the store's UploadParts
    manifest_store  manifests stored byte-exact, their content checked; referrers
    tags            tags, and the published versions that pin them
    router          the HTTP endpoints, streaming request and response bodies
"""
