"""The room's rules: publishing events (``emit``), acting on client intents, replaying the log.

``emit`` is the contract other packages use::

    await app.state.rooms.emit(session_id, type, data, store=True, audience="all") -> event dict

The bus assigns ``id`` and ``ts``; stored events go to ``room_events`` (``presence`` and
``reaction`` never are). ``audience="staff"`` reaches host and staff connections only
(``counters`` always does).

When the bus is down (Redis restarting), ``emit`` does not fail: the event goes to this
process's outbox (in memory, in order, at most ``OUTBOX_MAX`` events) and is published, and
stored, as soon as the bus takes events again; meanwhile ``emit`` returns the event with
``"id": None, "queued": True``. Presence and reaction pulses are not queued (they are
superseded by the next pulse), nor are chat and questions (their sender gets
``bus_unavailable`` and may send again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from catalog.cards import pin_card
from live.db import Database, new_id, now_ms
from live.errors import Conflict, NotFound, ValidationFailed
from live.models import ChatMessage, Question
from live.room import store as storage
from live.room.bus import BusUnavailable, EventBus
from live.room.connection import Connection
from live.room.events import EPHEMERAL_TYPES, STAFF_ONLY_TYPES, Event, frame
from live.room.hub import Hub, Track
from live.room.persist import BACKLOG, Persister
from live.room.protocol import Intent
from live.room.state import RECENT_CHAT, RoomState

REPLAY_PAGE = 500
OUTBOX_MAX = 10_000
OUTBOX_RETRY = (0.1, 2.0)  # first and longest wait between attempts while the bus is down
T = TypeVar("T")
log = logging.getLogger("vitrine.room.service")


class RoomService:
    def __init__(
        self,
        *,
        db: Database,
        bus: EventBus,
        hub: Hub,
        track: Track,
        persister: Persister,
        ack_before_commit: bool = False,
    ) -> None:
        self.db, self.bus, self.hub, self.track = db, bus, hub, track
        self.persister = persister
        self.ack_before_commit = ack_before_commit
        self._outbox: deque[tuple[str, str, dict[str, Any], bool, str]] = deque()
        self._drainer: asyncio.Task[None] | None = None

    # -- publishing --------------------------------------------------------------------------
    async def emit(
        self,
        session_id: str,
        type: str,
        data: dict[str, Any],
        *,
        store: bool = True,
        audience: str = "all",
    ) -> dict[str, Any]:
        """Publish; when ``store``, return once the event is committed to ``room_events``.
        While the bus is down, queue it (see the module docstring)."""
        if not self._outbox:
            try:
                return (
                    await self._publish(session_id, type, data, store=store, audience=audience)
                ).public()
            except BusUnavailable:
                if type in EPHEMERAL_TYPES:
                    raise
        elif type in EPHEMERAL_TYPES:
            raise BusUnavailable("the room bus is unavailable")
        if len(self._outbox) >= OUTBOX_MAX:
            raise BusUnavailable("the room bus is unavailable and its outbox is full")
        self._outbox.append((session_id, type, data, store, audience))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="room-outbox")
        return {**data, "type": type, "id": None, "ts": now_ms(), "queued": True}

    @property
    def outbox(self) -> int:
        """Events waiting for the bus."""
        return len(self._outbox)

    async def _drain(self) -> None:
        """Publish the outbox in order, waiting (with backoff) while the bus stays down."""
        wait = OUTBOX_RETRY[0]
        log.warning("room bus unavailable: queueing events", extra={"queued": len(self._outbox)})
        while self._outbox:
            sid, type, data, store, audience = self._outbox[0]
            try:
                await self._publish(sid, type, data, store=store, audience=audience)
            except BusUnavailable:
                await asyncio.sleep(wait)
                wait = min(wait * 2, OUTBOX_RETRY[1])
                continue
            except Exception:
                log.exception("a queued room event could not be published", extra={"type": type})
            self._outbox.popleft()
            wait = OUTBOX_RETRY[0]
        log.warning("room bus back: queued events published")

    async def close(self) -> None:
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer

    async def _publish(
        self,
        session_id: str,
        type: str,
        data: dict[str, Any],
        *rows: Any,
        store: bool = True,
        audience: str = "all",
        wait: bool = True,
        sender: Connection | None = None,
    ) -> Event:
        """Assign the id (the bus), then store the event with its state ``rows`` in the next group
        commit. This process's sockets get the event only after the commit (see
        :mod:`live.room.hub`), so its echo acknowledges a durable event. ``wait`` returns once
        it is committed; ``wait=False`` (chat and questions from a socket, which keeps reading
        meanwhile so that its messages join the same group commit) returns before, unless the
        persister is backlogged, and a failed commit answers ``sender`` with ``not_stored``.

        With ``ack_before_commit`` (a benchmark comparison only) sockets get the event at once."""
        if audience not in ("all", "staff"):
            raise ValueError(f"unknown audience {audience!r}")
        if type in STAFF_ONLY_TYPES:
            audience = "staff"
        stored = store and type not in EPHEMERAL_TYPES
        if not (stored or rows):
            return await self.bus.publish(session_id, type, data, audience)
        if self.ack_before_commit:
            ev = await self.bus.publish(session_id, type, data, audience)
            early = self.persister.submit([*rows, storage.event_row(ev)] if stored else list(rows))
            if wait or self.persister.backlog > BACKLOG:
                await early
            return ev
        hold = self.hub.hold(session_id)
        published: Event | None = None
        fut: asyncio.Future[None] | None = None
        try:
            published = await self.bus.publish(session_id, type, data, audience)
            fut = self.persister.submit(
                [*rows, storage.event_row(published)] if stored else list(rows)
            )
        finally:
            self.hub.release(hold, published.id if published else None, fut, sender)
        assert fut is not None
        if wait or self.persister.backlog > BACKLOG:
            await fut
        elif sender is not None:
            fut.add_done_callback(lambda f: _not_stored(sender, f))
        return published

    async def _retry_after_drain(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn``; on NotFound, wait for queued rows to be committed and try once more."""
        try:
            return await fn()
        except NotFound:
            await self.persister.drained()
            return await fn()

    # -- the state a connecting client starts from -------------------------------------------
    async def load_state(self, session_id: str) -> RoomState:
        sess = await storage.session_row(self.db, session_id)
        if sess is None:
            raise NotFound(f"no session {session_id!r}", code="session_not_found")
        state = RoomState(
            session_id,
            status=sess.status,
            kind=sess.kind,
            title=sess.title,
            scheduled_at=sess.scheduled_at,
        )
        if sess.pinned_product_id:
            try:
                state.pinned = await pin_card(self.db, session_id, sess.pinned_product_id)
            except NotFound:
                state.pinned = None
        state.questions = {
            q["question_id"]: q for q in await storage.open_questions(self.db, session_id)
        }
        state.chat.extend(await storage.recent_chat(self.db, session_id, RECENT_CHAT))
        return state

    async def recovered(self, session_id: str, after: int, upto: int) -> bool:
        """Can a resume from ``after`` be served in full (every event up to ``upto``)? Not when
        ``after`` is ahead of the room, nor when it predates the session's current id sequence
        (the bus counter was seeded again — a restart, a flushed Redis — and events issued just
        before may never have been stored). As Centrifugo's ``recovered: false``, the client
        then rebuilds its view from the hello."""
        if after > upto:
            return False
        return after >= await self.bus.epoch(session_id)

    async def replay(self, session_id: str, after: int, upto: int) -> AsyncIterator[list[Event]]:
        """Every event with ``after < id <= upto``, in order, in pages: the database for what
        the bus no longer buffers, then the bus buffer."""
        buffered = [e for e in await self.bus.recent(session_id, after) if e.id <= upto]
        first = buffered[0].id if buffered else upto + 1
        cursor = after
        while cursor + 1 < first:
            rows = await storage.events_between(self.db, session_id, cursor, first, REPLAY_PAGE)
            if not rows:
                break
            yield rows
            cursor = rows[-1].id
        for i in range(0, len(buffered), REPLAY_PAGE):
            yield buffered[i : i + REPLAY_PAGE]

    # -- intents -----------------------------------------------------------------------------
    async def handle(self, conn: Connection, state: RoomState, intent: Intent) -> None:
        """Act on a valid intent; raises a :class:`live.errors.VitrineError` for the sender."""
        handler = getattr(self, "_on_" + intent.kind)
        await handler(conn, state, **intent.args)

    async def _check_speech(self, conn: Connection, state: RoomState, text: str) -> None:
        if state.status == "ended" and not conn.is_staff:
            raise Conflict("the session has ended", code="session_ended")
        if not state.blocked_fresh():
            state.blocked = await storage.blocked_words(self.db, conn.session_id)
            state.blocked_at = time.monotonic()
        low = text.lower()
        if any(w in low for w in state.blocked):
            raise ValidationFailed(
                "your message contains a word this store does not allow", code="blocked_word"
            )

    async def _on_chat(self, conn: Connection, state: RoomState, text: str) -> None:
        await self._check_speech(conn, state, text)
        mid = new_id("ch")
        row = ChatMessage(
            id=mid,
            session_id=conn.session_id,
            viewer_id=conn.actor_id,
            name=conn.name,
            text=text,
            created_at=now_ms(),
        )
        await self._publish(
            conn.session_id,
            "chat",
            {
                "message_id": mid,
                "viewer_id": conn.actor_id,
                "name": conn.name,
                "role": conn.role,
                "text": text,
            },
            row,
            wait=False,
            sender=conn,
        )
        self.track("chat", conn.session_id, conn.viewer_id)

    async def _on_question(self, conn: Connection, state: RoomState, text: str) -> None:
        await self._check_speech(conn, state, text)
        qid = new_id("qu")
        row = Question(
            id=qid,
            session_id=conn.session_id,
            viewer_id=conn.actor_id,
            name=conn.name,
            text=text,
            votes=0,
            answered=False,
            deleted=False,
            created_at=now_ms(),
        )
        await self._publish(
            conn.session_id,
            "question",
            {
                "question_id": qid,
                "viewer_id": conn.actor_id,
                "name": conn.name,
                "text": text,
                "votes": 0,
                "answered": False,
            },
            row,
            wait=False,
            sender=conn,
        )
        self.track("question", conn.session_id, conn.viewer_id)

    async def _on_vote(self, conn: Connection, state: RoomState, question_id: str) -> None:
        q = await self._retry_after_drain(
            lambda: storage.vote(self.db, conn.session_id, question_id, conn.actor_id)
        )
        await self._publish(
            conn.session_id,
            "question_updated",
            {"question_id": q.id, "votes": q.votes, "answered": q.answered},
        )

    async def _on_react(self, conn: Connection, state: RoomState, kind: str) -> None:
        self.hub.react(conn.session_id, kind)
        self.track("reaction", conn.session_id, conn.viewer_id, kind=kind)

    async def _on_pin(self, conn: Connection, state: RoomState, product_id: str) -> None:
        card = await pin_card(self.db, conn.session_id, product_id)
        await storage.set_pinned(self.db, conn.session_id, product_id)
        await self._publish(conn.session_id, "pin", {"product_id": product_id, "card": card})

    async def _on_unpin(self, conn: Connection, state: RoomState) -> None:
        await storage.set_pinned(self.db, conn.session_id, None)
        await self._publish(conn.session_id, "unpin", {})

    async def _on_answer(self, conn: Connection, state: RoomState, question_id: str) -> None:
        q = await self._retry_after_drain(
            lambda: storage.answer(self.db, conn.session_id, question_id)
        )
        await self._publish(
            conn.session_id,
            "question_updated",
            {"question_id": q.id, "votes": q.votes, "answered": True},
        )

    async def _on_delete(self, conn: Connection, state: RoomState, message_id: str) -> None:
        kind = await self._retry_after_drain(
            lambda: storage.delete_message(self.db, conn.session_id, message_id)
        )
        if kind == "chat":
            await self._publish(conn.session_id, "chat_deleted", {"message_id": message_id})
        else:
            await self._publish(
                conn.session_id, "question_updated", {"question_id": message_id, "deleted": True}
            )

    async def _on_mute(
        self, conn: Connection, state: RoomState, viewer_id: str, minutes: int
    ) -> None:
        until = now_ms() + minutes * 60_000
        await storage.moderate(self.db, conn.session_id, viewer_id, muted_until=until)
        await self._publish(
            conn.session_id,
            "moderation",
            {"action": "mute", "viewer_id": viewer_id, "until": until, "by": conn.actor_id},
            audience="staff",
        )

    async def _on_ban(self, conn: Connection, state: RoomState, viewer_id: str) -> None:
        await storage.moderate(self.db, conn.session_id, viewer_id, ban=True)
        await self._publish(
            conn.session_id,
            "moderation",
            {"action": "ban", "viewer_id": viewer_id, "by": conn.actor_id},
            audience="staff",
        )


def _not_stored(sender: Connection, commit: asyncio.Future[None]) -> None:
    """A message that could not be committed was never shown here: tell its sender."""
    if commit.cancelled() or commit.exception() is not None:
        sender.push(
            frame(
                [
                    {
                        "type": "error",
                        "error": "not_stored",
                        "detail": "your message could not be saved; send it again",
                        "ts": now_ms(),
                    }
                ]
            )
        )
