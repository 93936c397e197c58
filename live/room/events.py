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


#: A frame the room sends stays under this many bytes when it holds more than one event: a
#: batch that grew while the room waited (for a commit, a slow tick) goes out as several frames,
#: so no client meets a frame beyond its limit (``websockets`` refuses more than 1 MiB).
FRAME_BUDGET = 256 * 1024


def frames(events: list[dict[str, Any]], budget: int = FRAME_BUDGET) -> list[str]:
    """The events as one frame, or split in halves until each frame is within ``budget``
    (serialised once in the usual case of a small batch)."""
    text = frame(events)
    if len(text) <= budget or len(events) <= 1:
        return [text]
    mid = len(events) // 2
    return frames(events[:mid], budget) + frames(events[mid:], budget)
