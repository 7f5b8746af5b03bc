"""The web catalog served at `/`: server-rendered pages to browse, search and read functions."""

from fnhub.hub.web.routes import router

__all__ = ["router"]
