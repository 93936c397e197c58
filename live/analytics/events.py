"""What producers send: one validated, bounded :class:`Event` per ``track(...)`` call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KINDS = (
    "joined",
    "left",
    "heartbeat",
    "impression",
    "card_opened",
    "cart_added",
    "purchase",
    "chat",
    "question",
    "reaction",
)
SOURCES = ("invite", "public", "share", "replay")
MAX_SPAN = 360  # buckets one heartbeat may cover (one hour)
MAX_AMOUNT = 10**12


class InvalidEvent(ValueError):
    """A tracked event we cannot record (unknown kind, missing id, bad field)."""


@dataclass(slots=True)
class Event:
    kind: str
    session_id: str
    viewer_id: str | None
    ts: int
    replay: bool = False
    product_id: str | None = None
    order_id: str | None = None
    amount: int = 0
    currency: str = ""
    source: str | None = None
    invite_id: str | None = None
    associate_id: str | None = None
    span: int = 1  # heartbeat: consecutive 10-second buckets covered, starting at ts


def _id(value: Any, name: str, *, required: bool = False, max_len: int = 40) -> str | None:
    if value is None or value == "":
        if required:
            raise InvalidEvent(f"`{name}` is required")
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise InvalidEvent(f"`{name}` must be a string of at most {max_len} characters")
    return value


def _int(value: Any, name: str, lo: int, hi: int, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise InvalidEvent(f"`{name}` must be a number between {lo} and {hi}")
    return int(value)


def make_event(
    kind: str, session_id: Any, viewer_id: Any, fields: dict[str, Any], now: int
) -> Event:
    """Validate one tracked event. Unknown extra fields are ignored; bad known ones raise."""
    if kind not in KINDS:
        raise InvalidEvent(f"unknown kind {kind!r}")
    sid = _id(session_id, "session_id", required=True)
    vid = _id(viewer_id, "viewer_id", required=kind != "purchase")
    source = fields.get("source")
    if source is not None and source not in SOURCES:
        raise InvalidEvent(f"`source` must be one of {SOURCES}")
    currency = fields.get("currency") or ""
    if not isinstance(currency, str) or len(currency) > 3:
        raise InvalidEvent("`currency` must be an ISO 4217 code")
    replay = bool(fields.get("replay", False)) or source == "replay"
    product_id = fields.get("product_id")
    listed = fields.get("product_ids")
    if product_id is None and isinstance(listed, list) and listed:  # an order's first line
        product_id = listed[0]
    return Event(
        kind=kind,
        session_id=sid or "",
        viewer_id=vid,
        ts=_int(fields.get("ts"), "ts", 0, 2**53, now),
        replay=replay,
        product_id=_id(product_id, "product_id"),
        order_id=_id(fields.get("order_id"), "order_id", required=kind == "purchase", max_len=64),
        amount=_int(fields.get("amount"), "amount", 0, MAX_AMOUNT, 0),
        currency=currency.upper(),
        source=source,
        invite_id=_id(fields.get("invite_id"), "invite_id"),
        associate_id=_id(fields.get("associate_id"), "associate_id"),
        span=_int(fields.get("span"), "span", 1, MAX_SPAN, 1),
    )
