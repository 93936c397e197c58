"""Who is buying: the viewer behind a viewer token, and the key their profile and orders hang on.

A viewer row belongs to one session; the same person is recognised across sessions by their
client id (invited clients) or by their browser's anonymous key, so a profile is saved once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

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


def owner_key(v: SessionViewer) -> str:
    if v.client_id:
        return f"client:{v.client_id}"
    if v.anon_key:
        return "anon:" + hashlib.sha256(v.anon_key.encode()).hexdigest()[:40]
    return f"viewer:{v.id}"


async def load_buyer(s: AsyncSession, who: Viewer) -> Buyer:
    v = await s.get(SessionViewer, who.viewer_id)
    if v is None or v.session_id != who.session_id:
        raise Unauthorized("this viewer no longer exists; join the session again", code="invalid_token")
    if v.banned:
        raise Forbidden("you have been removed from this session", code="banned")
    return Buyer(viewer_id=v.id, session_id=v.session_id, owner_key=owner_key(v), client_id=v.client_id,
                 invite_id=v.invite_id, associate_id=v.associate_id, city=v.city or "")
