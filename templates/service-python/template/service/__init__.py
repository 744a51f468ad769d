"""The service's code: an HTTP server on the standard library only (no dependencies to pin)."""
