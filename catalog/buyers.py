"""Who is buying: the viewer behind a viewer token, and the key their profile and orders hang on.

A viewer row belongs to one session; the same person is recognised across sessions by their
client id (invited clients) or by their browser's anonymous key, so a profile is saved once.
Who a viewer is never changes after they join (only their name, mute and ban do), so a process
remembers it (:class:`Buyers`) and checkout reads the ban with the rest of its first query.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from live.auth import Viewer
from live.errors import Forbidden, Unauthorized
from live.models import SessionViewer


@dataclass(frozen=True)
class Buyer:
    viewer_id: str
    session_id: str
    owner_key: str
    client_id: str | None
    invite_id: str | None
    associate_id: str | None
    city: str


def owner_key(v: Any) -> str:
    """The key a viewer's profile and orders hang on (``v``: a viewer row, ORM object or Core row)."""
    if v.client_id:
        return f"client:{v.client_id}"
    if v.anon_key:
        return "anon:" + hashlib.sha256(v.anon_key.encode()).hexdigest()[:40]
    return f"viewer:{v.id}"


def buyer_of(v: Any, who: Viewer) -> Buyer:
    """The buyer behind a viewer row (ORM object or row with its columns), checked against the token."""
    if v is None or v.session_id != who.session_id:
        raise Unauthorized(
            "this viewer no longer exists; join the session again", code="invalid_token"
        )
    if v.banned:
        raise Forbidden("you have been removed from this session", code="banned")
    return Buyer(
        viewer_id=v.id,
        session_id=v.session_id,
        owner_key=owner_key(v),
        client_id=v.client_id,
        invite_id=v.invite_id,
        associate_id=v.associate_id,
        city=v.city or "",
    )


async def load_buyer(s: AsyncSession, who: Viewer) -> Buyer:
    return buyer_of(await s.get(SessionViewer, who.viewer_id), who)


class Buyers:
    """Who each viewer is (immutable facts), remembered by one process; bounded, oldest forgotten first."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._known: dict[str, Buyer] = {}

    def get(self, viewer_id: str) -> Buyer | None:
        return self._known.get(viewer_id)

    def remember(self, buyer: Buyer) -> None:
        if len(self._known) >= self.size:
            for old in list(self._known)[: self.size // 10 or 1]:
                del self._known[old]
        self._known[buyer.viewer_id] = buyer
