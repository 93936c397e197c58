"""Typed errors. Services raise them; the app maps them to ``{"error", "detail"}`` bodies."""

from __future__ import annotations


class VitrineError(Exception):
    """Base of every error a client may see. ``code`` is stable; ``detail`` is for people."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        detail: str = "",
        *,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.code)
        self.detail = detail or self.code.replace("_", " ")
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}


class BadRequest(VitrineError):
    status, code = 400, "bad_request"


class ValidationFailed(VitrineError):
    status, code = 422, "invalid"


class Unauthorized(VitrineError):
    status, code = 401, "unauthorized"


class Forbidden(VitrineError):
    status, code = 403, "forbidden"


class NotFound(VitrineError):
    status, code = 404, "not_found"


class Conflict(VitrineError):
    status, code = 409, "conflict"


class PayloadTooLarge(VitrineError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(VitrineError):
    status, code = 415, "unsupported_media_type"


class RateLimited(VitrineError):
    status, code = 429, "rate_limited"


class Unavailable(VitrineError):
    status, code = 503, "unavailable"
