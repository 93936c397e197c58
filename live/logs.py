"""Structured logs: one JSON object per line (``VITRINE_LOG_FORMAT=json``) or plain text.

No credential reaches a log line: every line goes through :func:`redact` after formatting (ours,
uvicorn's error and access loggers, exceptions and ``extra`` fields alike). It removes signed
tokens (``v1.<payload>.<mac>``), the value of any ``token=``/``invite=`` URL parameter,
``Bearer`` credentials and the configured secrets (the bootstrap admin token). Credentials are
kept out of URLs in the first place; this is the last defence.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable
from typing import Any

import orjson

_STD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


REDACTED = "[redacted]"
_PATTERNS = (
    # a signed token or cookie of live.auth: v1.<base64url payload>.<base64url mac>
    (re.compile(r"v1\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"), REDACTED),
    # ?token=…, &host_token=…, invite=…, subprotocol vitrine.token.…
    (
        re.compile(r"((?:^|[?&;\s\"'(])[A-Za-z_]*(?:token|invite)=)[^&\s\"'#;)\\]+", re.I),
        r"\1" + REDACTED,
    ),
    (re.compile(r"(vitrine\.token\.)[^\s,\"'\\]+"), r"\1" + REDACTED),
    (re.compile(r"(bearer\s+)[^\s,\"'\\]+", re.I), r"\1" + REDACTED),
)
_secrets: list[str] = []


def redact(text: str) -> str:
    """``text`` without credentials."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class Redacting(logging.Formatter):
    """Wraps a formatter: what it writes goes through :func:`redact`."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def configure(level: str = "INFO", fmt: str = "json", secrets: Iterable[str] = ()) -> None:
    """Log to stderr through :func:`redact`; ``secrets`` are strings never to be written."""
    _secrets[:] = sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        Redacting(
            JsonFormatter()
            if fmt == "json"
            else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    # vitrine.access writes one structured line per request; uvicorn's own would repeat it, so
    # it stays off unless uvicorn was started with its access log on (it has a handler then):
    # then its lines go through our redacting handler too.
    uv_access = logging.getLogger("uvicorn.access")
    uv_on = bool(uv_access.handlers)
    uv_access.handlers[:] = []
    uv_access.propagate = uv_on
    logging.getLogger("aioice").setLevel(logging.WARNING)
    logging.getLogger("aiortc").setLevel(logging.WARNING)
