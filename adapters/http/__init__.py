"""The Bacalhau API v1 compatible HTTP server (`klippfisk serve`)."""

from klippfisk.adapters.http.app import Background, ServeError, create_app

__all__ = ["Background", "ServeError", "create_app"]
