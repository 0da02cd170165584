"""API routes, one module per resource, mounted under ``/v1`` by ``services.app``."""
