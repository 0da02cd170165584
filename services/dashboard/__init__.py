"""The web dashboard: jobs with live progress, the registry with per-artifact plots, the device fleet.

``services.app`` includes ``router``; its pages live under ``/dashboard``.
"""

from services.dashboard.routes import router

__all__ = ["router"]
