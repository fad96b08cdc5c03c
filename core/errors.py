"""Domain errors, each carrying the HTTP status the edge answers with.

Core raises these; ``api/errors.py`` turns them into ``{"error", "detail"}`` bodies.
"""

from __future__ import annotations


class AppError(Exception):
    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFoundError(AppError):
    status_code = 404


class ConflictError(AppError):
    status_code = 409


class InvalidInputError(AppError):
    status_code = 422


class AuthenticationError(AppError):
    status_code = 401


class PermissionDeniedError(AppError):
    status_code = 403


class WebhookSignatureError(AuthenticationError):
    """A platform webhook arrived without a valid credential or signature."""


class MalformedWebhookError(AppError):
    """A platform webhook body could not be parsed; ``detail`` names the field."""

    status_code = 422


class InvalidJsonError(MalformedWebhookError):
    """The body is not JSON at all."""

    status_code = 400


class PayloadTooLargeError(AppError):
    """A request body over the configured limit (``BACKLINE_MAX_BODY_BYTES``)."""

    status_code = 413


class RateLimitedError(AppError):
    """Too many failed authentications from one source address."""

    status_code = 429


class TemporalUnavailableError(AppError):
    """Temporal is unreachable right now, so a workflow cannot be started, queried or described
    (retry shortly)."""

    status_code = 503
