"""A room event as it travels through the bus, and how a batch of them becomes one frame."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

AUDIENCES = ("all", "staff")
STAFF_ONLY_TYPES = frozenset({"counters"})  # always staff-only, whatever the emitter says
EPHEMERAL_TYPES = frozenset({"presence", "reaction"})  # take ids, never stored


@dataclass(frozen=True, slots=True)
class Event:
    """``audience``: ``all`` (everyone) or ``staff`` (host and staff connections only)."""

    session_id: str
    id: int
    type: str
    ts: int
    data: dict[str, Any]
    audience: str = "all"

    def public(self) -> dict[str, Any]:
        return {**self.data, "type": self.type, "id": self.id, "ts": self.ts}


def frame(events: Iterable[dict[str, Any]]) -> str:
    """One text frame: a JSON array of events (serialised once, sent to many)."""
    return orjson.dumps(list(events)).decode()
