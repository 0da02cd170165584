"""Errors that service functions raise, each mapped to one HTTP status by the app."""

from __future__ import annotations


class ServiceError(Exception):
    """Base class. ``status_code`` is the HTTP status of the API response."""

    status_code = 400

    def __init__(self, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class BadRequestError(ServiceError):
    status_code = 400


class UnauthorizedError(ServiceError):
    status_code = 401

    def __init__(self, detail: str):
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class ForbiddenError(ServiceError):
    status_code = 403


class NotFoundError(ServiceError):
    status_code = 404


class ConflictError(ServiceError):
    status_code = 409


class PayloadTooLargeError(ServiceError):
    status_code = 413


class RangeNotSatisfiableError(ServiceError):
    status_code = 416


class UnprocessableError(ServiceError):
    status_code = 422


class UnavailableError(ServiceError):
    status_code = 503
