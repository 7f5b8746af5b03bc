"""The web catalog served at `/`: server-rendered pages to browse, search and read functions.

Its routes are in `fnhub.hub.web.routes`; nothing is imported here, so the hub can load the
catalog (Jinja2, the Markdown renderer, compiled templates: ~4 MiB) on its first page request
(`fnhub.hub.api.site.include_catalog`) rather than at start."""
