"""The room's storage: the durable event log (``room_events``) and the chat/question state rows.

Every function takes the :class:`live.db.Database`; nothing here knows about sockets or buses.
An event's audience other than ``all`` is kept inside its stored data under ``_audience``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from live.db import Database
from live.errors import Conflict, NotFound
from live.models import (
    ChatMessage,
    LiveSession,
    Question,
    QuestionVote,
    RoomEvent,
    SessionViewer,
    StaffMember,
    Store,
)
from live.room.events import Event

_AUDIENCE_KEY = "_audience"
RESEED_GAP = 1_000_000


def event_row(ev: Event) -> RoomEvent:
    data = ev.data if ev.audience == "all" else {**ev.data, _AUDIENCE_KEY: ev.audience}
    return RoomEvent(session_id=ev.session_id, id=ev.id, type=ev.type, ts=ev.ts, data=data)


def _event(r: RoomEvent) -> Event:
    data = dict(r.data)
    audience = data.pop(_AUDIENCE_KEY, "all")
    return Event(r.session_id, r.id, r.type, r.ts, data, audience)


async def max_event_id(db: Database, session_id: str) -> int:
    async with db.read() as s:
        return int(
            await s.scalar(select(func.max(RoomEvent.id)).where(RoomEvent.session_id == session_id))
            or 0
        )


async def seed_id(db: Database, session_id: str) -> int:
    """Where a session's ids continue when no counter survives (a restart, a flushed Redis): past
    every stored id and past any unstored one (presence, reactions) issued since, so that a
    client resuming with ``after`` never skips a new event. Ids increase; they are not dense."""
    return await max_event_id(db, session_id) + RESEED_GAP


async def events_between(
    db: Database, session_id: str, after: int, before: int | None, limit: int = 500
) -> list[Event]:
    """Stored events with ``after < id < before`` in id order, at most ``limit``."""
    q = select(RoomEvent).where(RoomEvent.session_id == session_id, RoomEvent.id > after)
    if before is not None:
        q = q.where(RoomEvent.id < before)
    async with db.read() as s:
        rows = (await s.scalars(q.order_by(RoomEvent.id).limit(limit))).all()
    return [_event(r) for r in rows]


async def session_row(db: Database, session_id: str) -> LiveSession | None:
    async with db.read() as s:
        return await s.get(LiveSession, session_id)


async def blocked_words(db: Database, session_id: str) -> list[str]:
    async with db.read() as s:
        words = await s.scalar(
            select(Store.blocked_words)
            .join(LiveSession, LiveSession.store_id == Store.id)
            .where(LiveSession.id == session_id)
        )
    return [w.lower() for w in (words or []) if isinstance(w, str) and w.strip()]


async def viewer(db: Database, session_id: str, viewer_id: str) -> SessionViewer | None:
    async with db.read() as s:
        v = await s.get(SessionViewer, viewer_id)
    return v if v is not None and v.session_id == session_id else None


async def staff_name(db: Database, staff_id: str | None) -> str:
    if staff_id is None:
        return "Admin"
    async with db.read() as s:
        return str(
            await s.scalar(select(StaffMember.name).where(StaffMember.id == staff_id)) or "Staff"
        )


async def open_questions(db: Database, session_id: str, limit: int = 200) -> list[dict[str, Any]]:
    async with db.read() as s:
        rows = (
            await s.scalars(
                select(Question)
                .where(
                    Question.session_id == session_id,
                    Question.deleted.is_(False),
                    Question.answered.is_(False),
                )
                .order_by(Question.votes.desc(), Question.created_at)
                .limit(limit)
            )
        ).all()
    return [question_json(q) for q in rows]


async def recent_chat(db: Database, session_id: str, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` chat messages not deleted, in id order (the log orders them; two
    messages may share a millisecond)."""
    async with db.read() as s:
        events = (
            await s.scalars(
                select(RoomEvent)
                .where(RoomEvent.session_id == session_id, RoomEvent.type == "chat")
                .order_by(RoomEvent.id.desc())
                .limit(limit * 2)
            )
        ).all()
        ids = [str(e.data.get("message_id")) for e in events]
        deleted = (
            set(
                (
                    await s.scalars(
                        select(ChatMessage.id).where(
                            ChatMessage.id.in_(ids), ChatMessage.deleted.is_(True)
                        )
                    )
                ).all()
            )
            if ids
            else set()
        )
    out = [
        {k: e.data.get(k) for k in ("message_id", "viewer_id", "name", "role", "text")}
        | {"ts": e.ts}
        for e in reversed(events)
        if e.data.get("message_id") not in deleted
    ]
    return out[-limit:]


def question_json(q: Question) -> dict[str, Any]:
    return {
        "question_id": q.id,
        "viewer_id": q.viewer_id,
        "name": q.name,
        "text": q.text,
        "votes": q.votes,
        "answered": q.answered,
        "ts": q.created_at,
    }


async def vote(db: Database, session_id: str, question_id: str, voter: str) -> Question:
    try:
        async with db.write() as s:
            q = await s.get(Question, question_id)
            if q is None or q.session_id != session_id or q.deleted:
                raise NotFound(
                    f"no question {question_id!r} in this session", code="question_not_found"
                )
            s.add(QuestionVote(question_id=question_id, viewer_id=voter))
            await s.flush()
            await s.execute(
                update(Question).where(Question.id == question_id).values(votes=Question.votes + 1)
            )
            await s.refresh(q)
            return q
    except IntegrityError:
        raise Conflict("you already voted for this question", code="already_voted") from None


async def answer(db: Database, session_id: str, question_id: str) -> Question:
    async with db.write() as s:
        q = await s.get(Question, question_id)
        if q is None or q.session_id != session_id or q.deleted:
            raise NotFound(
                f"no question {question_id!r} in this session", code="question_not_found"
            )
        q.answered = True
        return q


async def delete_message(db: Database, session_id: str, message_id: str) -> str:
    """Mark a chat message (or a question) deleted; returns ``chat`` or ``question``."""
    async with db.write() as s:
        chat = await s.get(ChatMessage, message_id)
        if chat is not None and chat.session_id == session_id:
            chat.deleted = True
            return "chat"
        question = await s.get(Question, message_id)
        if question is not None and question.session_id == session_id:
            question.deleted = True
            return "question"
    raise NotFound(f"no message {message_id!r} in this session", code="message_not_found")


async def moderate(
    db: Database,
    session_id: str,
    viewer_id: str,
    *,
    muted_until: int | None = None,
    ban: bool = False,
) -> None:
    async with db.write() as s:
        v = await s.get(SessionViewer, viewer_id)
        if v is None or v.session_id != session_id:
            raise NotFound(f"no viewer {viewer_id!r} in this session", code="viewer_not_found")
        if muted_until is not None:
            v.muted_until = muted_until
        if ban:
            v.banned = True


async def set_pinned(db: Database, session_id: str, product_id: str | None) -> None:
    async with db.write() as s:
        await s.execute(
            update(LiveSession)
            .where(LiveSession.id == session_id)
            .values(pinned_product_id=product_id)
        )


async def live_sessions(db: Database) -> int:
    async with db.read() as s:
        return int(
            await s.scalar(
                select(func.count()).select_from(LiveSession).where(LiveSession.status == "live")
            )
            or 0
        )
