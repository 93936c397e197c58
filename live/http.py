"""HTTP helpers shared by every route module: orjson responses, bounded JSON bodies,
field validation and the error handlers that turn every failure into a JSON body."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from live.errors import (
    BadRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    VitrineError,
)

log = logging.getLogger("vitrine.http")
T = TypeVar("T")


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSON:
    return JSON({"error": code, "detail": detail}, status_code=status, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise PayloadTooLarge(f"body larger than {limit} bytes")
        except ValueError as exc:
            raise BadRequest("invalid Content-Length") from exc
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The request's JSON object, bounded by ``VITRINE_MAX_BODY_BYTES``."""
    limit = request.app.state.settings.max_body_bytes
    ctype = request.headers.get("content-type", "")
    raw = await read_body(request, limit)
    if not raw.strip():
        if required:
            raise BadRequest("a JSON body is required", code="invalid_json")
        return {}
    if ctype and "json" not in ctype:
        raise UnsupportedMediaType("send Content-Type: application/json")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}", code="invalid_json") from exc
    if not isinstance(data, dict):
        raise BadRequest("the JSON body must be an object", code="invalid_json")
    if b"u0000" in raw and _has_nul(data):
        raise ValidationFailed("text must not contain NUL characters (\\u0000)")
    return data


def _has_nul(value: Any) -> bool:
    """True when any string (key or value) in a decoded JSON document holds a NUL character:
    PostgreSQL cannot store one, and no field of ours has a use for it. Iterative, so a deeply
    nested document cannot exhaust the stack."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


_MISSING = object()
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # what every database column of ours can hold


def field(
    data: dict[str, Any],
    name: str,
    kind: type[T] | tuple[type, ...],
    *,
    default: Any = _MISSING,
    check: Callable[[Any], bool] | None = None,
    why: str = "",
) -> Any:
    """Read ``data[name]`` as ``kind`` or raise a 422 naming the field."""
    if name not in data or data[name] is None:
        if default is _MISSING:
            raise ValidationFailed(f"`{name}` is required")
        return default
    value = data[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise ValidationFailed(f"`{name}` must be {_kind_name(kinds)}")
    if not isinstance(value, kinds):
        raise ValidationFailed(f"`{name}` must be {_kind_name(kinds)}")
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not INT64_MIN <= value <= INT64_MAX
    ):
        raise ValidationFailed(f"`{name}` is out of range (64-bit integers only)")
    if check is not None and not check(value):
        raise ValidationFailed(f"`{name}` {why or 'is invalid'}")
    return value


def str_list(
    data: dict[str, Any], name: str, *, default: Any = _MISSING, max_items: int = 1000
) -> list[str]:
    value = field(data, name, list, default=default)
    if value is default:
        return value  # type: ignore[no-any-return]
    if len(value) > max_items or not all(isinstance(v, str) and v for v in value):
        raise ValidationFailed(f"`{name}` must be a list of at most {max_items} ids")
    return list(value)


def _kind_name(kinds: Sequence[type]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "an object",
        bool: "a boolean",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def query_int(request: Request, name: str, default: int, lo: int = 0, hi: int = 10**9) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValidationFailed(f"`{name}` must be an integer") from exc
    if not lo <= value <= hi:
        raise ValidationFailed(f"`{name}` must be between {lo} and {hi}")
    return value


class RejectNul:
    """ASGI middleware: a NUL character in the path or the query string (``%00``) is a 400 for HTTP
    and a refused handshake for WebSockets. Ids and filters come from there; PostgreSQL cannot even
    compare text holding NUL, so it would otherwise answer a 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and (
            "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"")
        ):
            if scope["type"] == "http":
                await error_response(400, "bad_request", "the URL must not contain NUL characters")(
                    scope, receive, send
                )
            else:
                await send({"type": "websocket.close", "code": 1008, "reason": "NUL in the URL"})
            return
        await self.app(scope, receive, send)


# -- error handlers ---------------------------------------------------------------------------


async def vitrine_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VitrineError)
    return error_response(exc.status, exc.code, exc.detail, exc.headers or None)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}) or None)


async def server_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", extra={"path": request.url.path})
    return error_response(500, "internal", "internal server error")


EXCEPTION_HANDLERS: dict[Any, Callable[..., Any]] = {
    VitrineError: vitrine_error_handler,
    HTTPException: http_error_handler,
    Exception: server_error_handler,
}
