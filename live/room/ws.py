"""``WS /ws/sessions/{id}?after=…``: the room socket. It only feeds the protocol.

Connect with a viewer token of this session, the session's host token or a staff token, sent
as a WebSocket subprotocol, never in the URL (URLs are logged)::

    new WebSocket(url, ["vitrine.room", "vitrine.token." + token])

The server selects ``vitrine.room`` (offer it, or a browser refuses the answer) and never
echoes the token. ``?token=`` is not accepted. The server accepts, checks, and on refusal
closes at once with one of these codes:

========  ==================================================================================
code      meaning
========  ==================================================================================
4400      ``after`` is not a non-negative integer
4401      token missing, malformed, badly signed, expired or revoked (``reason`` says which;
          also sent when the credential is revoked mid-session)
4403      token of another session, unknown viewer, or banned (also sent on a ban mid-session)
4404      no such session
4429      this viewer holds ``VITRINE_MAX_SOCKETS_PER_VIEWER`` sockets of the room already
4408      the client fell behind (its send queue filled up): reconnect with ``after=<last id>``
1011      the room could not be loaded (internal error): retry later
1012      the server is restarting: reconnect with ``after=<last id>``
========  ==================================================================================

Server frames are JSON arrays of events. The first frame after accept is ``[hello]``::

    {"type": "hello", "id": <state as of this event id>, "ts", "role": "viewer|host|staff",
     "viewer_id", "staff_id", "name", "session": {"id", "status", "kind", "title", "scheduled_at"},
     "pinned": <card or null>, "deal": <running deal or null>,
     "questions": [open questions, most votes first], "chat": [the 50 most recent messages],
     "viewers": <last presence count>, "counters": <last host counters; host/staff only>}

With ``after``, every event with ``after < id <= hello.id`` follows, in order, then live
events; the hello then carries ``"recovered": true``, or ``false`` when the resume cannot be
served in full (``after`` is ahead of the room, or predates a restart of the session's id
sequence): what the log still has follows, and the client rebuilds its view from the hello.
Without it, live events follow; a client keeps the largest ``id`` it saw and reconnects
with ``after=<it>`` to miss nothing. Errors answer only their sender:
``{"type": "error", "error": code, "detail": text, "ts", "ref"?}``; the socket stays open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import QueryParams
from starlette.types import Receive, Scope, Send

from live.api import doc
from live.auth import Host, Principal, Staff
from live.db import now_ms
from live.errors import NotFound, Unauthorized, VitrineError
from live.http import INT64_MAX
from live.policy import Action, Target, allowed, room_grants
from live.room import store
from live.room.connection import Connection
from live.room.events import frame
from live.room.hub import Hub, Room, TooManySockets
from live.room.protocol import Reject, RoomProtocol
from live.room.service import RoomService

log = logging.getLogger("vitrine.room.ws")

SUBPROTOCOL = "vitrine.room"
TOKEN_PROTOCOL = "vitrine.token."  # noqa: S105 (a prefix, not a secret)


def offered_token(subprotocols: list[str]) -> str | None:
    """The token a client offered as the ``vitrine.token.<token>`` subprotocol."""
    for proto in subprotocols:
        if proto.startswith(TOKEN_PROTOCOL):
            return proto[len(TOKEN_PROTOCOL) :] or None
    return None


class Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


@dataclass(frozen=True)
class Admitted:
    role: str
    actor_id: str
    name: str
    muted_until: int = 0
    joined: dict[str, Any] | None = None  # analytics fields of a viewer
    grants: frozenset[Action] = frozenset()  # the room actions the policy grants (live.policy)
    counted: bool = True  # one of the session's viewers (not staff reading along)
    credential: Principal | None = None  # what the token stood for (revocation closes it)


async def admit(
    state: Any, session_id: str, query: QueryParams, token: str | None
) -> tuple[Admitted, int | None]:
    """Check the token and ``after``; raises :class:`Refused` with the close code."""
    raw_after = query.get("after")
    after: int | None = None
    if raw_after not in (None, ""):
        try:
            after = int(raw_after)  # type: ignore[arg-type]
        except ValueError:
            raise Refused(4400, "`after` must be a non-negative integer") from None
        if not 0 <= after <= INT64_MAX:
            raise Refused(4400, "`after` must be a non-negative integer")
    if not token:
        raise Refused(
            4401, "a token is required (subprotocol vitrine.token.<token>; never in the URL)"
        )
    try:
        p = state.tokens.read(token)
    except Unauthorized as exc:
        raise Refused(4401, exc.detail) from None
    sess = await store.session_row(state.db, session_id)
    if sess is None:
        raise Refused(4404, "no such session")
    target = Target.of_session(sess)
    may = allowed(p, Action.WATCH, target)
    if not may:
        raise Refused(4401 if may.status == 401 else 4403, may.detail)
    grants = room_grants(p, target)
    if isinstance(p, Staff):
        name = await store.staff_name(state.db, p.staff_id)
        if Action.MODERATE in grants:
            return Admitted(
                "staff", p.staff_id or "admin", name, grants=grants, credential=p
            ), after
        # staff of another store watch a public room as a reader: no viewer of its audience
        return Admitted(
            "viewer", p.staff_id or "admin", name, grants=grants, counted=False, credential=p
        ), after
    if isinstance(p, Host):
        name = await store.staff_name(state.db, p.staff_id)
        return Admitted("host", p.staff_id, name, grants=grants, credential=p), after
    v = await store.viewer(state.db, session_id, p.viewer_id)
    if v is None:
        raise Refused(4403, "unknown viewer")
    if v.banned:
        raise Refused(4403, "banned from this session")
    return Admitted(
        "viewer",
        v.id,
        v.name,
        v.muted_until,
        {"source": v.source, "invite_id": v.invite_id, "associate_id": v.associate_id},
        grants=grants,
        credential=p,
    ), after


class RoomSocket:
    """The raw ASGI endpoint (no per-message wrapper objects)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        state = scope["app"].state
        sid = scope["path_params"]["id"]
        offered = list(scope.get("subprotocols") or [])
        accept: dict[str, Any] = {"type": "websocket.accept"}
        if SUBPROTOCOL in offered:
            accept["subprotocol"] = SUBPROTOCOL
        await send(accept)
        try:
            who, after = await admit(
                state, sid, QueryParams(scope.get("query_string", b"")), offered_token(offered)
            )
        except Refused as r:
            state.metrics.room_rejected.labels(f"close_{r.code}").inc()
            await send({"type": "websocket.close", "code": r.code, "reason": r.reason})
            return
        settings = state.settings
        hub: Hub = state.room_hub
        conn = Connection(
            send,
            session_id=sid,
            role=who.role,
            actor_id=who.actor_id,
            name=who.name,
            limit=settings.send_queue_frames,
            counted=who.counted,
        )
        conn.protocol = RoomProtocol(
            role=who.role,
            actor_id=who.actor_id,
            max_frame_bytes=settings.max_frame_bytes,
            max_text_chars=settings.max_text_chars,
            limiter=hub.limiter,
            muted_until_ms=who.muted_until,
            grants=who.grants,
        )
        try:
            room = await hub.join(conn, settings.max_sockets_per_viewer)
        except TooManySockets as exc:
            state.metrics.room_rejected.labels("close_4429").inc()
            await send({"type": "websocket.close", "code": 4429, "reason": str(exc)})
            return
        except NotFound:
            await send({"type": "websocket.close", "code": 4404, "reason": "no such session"})
            return
        except Exception:
            log.exception("room load failed", extra={"session": sid})
            await send({"type": "websocket.close", "code": 1011, "reason": "room unavailable"})
            return
        credentials: dict[Connection, Principal] | None = getattr(state, "room_credentials", None)
        if credentials is not None and who.credential is not None:
            credentials[conn] = who.credential
        try:
            await self._start(state, hub, room, conn, who, after)
            await self._read(state, room, conn, receive)
        except asyncio.CancelledError:
            if not conn.aborted:  # aborted: a stalled peer that never took our close frame
                raise
        finally:
            if credentials is not None:
                credentials.pop(conn, None)
            hub.leave(conn)
            await conn.stop()
            if conn.viewer_id is not None:
                state.track("left", sid, conn.viewer_id)

    async def _start(
        self, state: Any, hub: Hub, room: Room, conn: Connection, who: Admitted, after: int | None
    ) -> None:
        assert room.state is not None
        rooms: RoomService = state.rooms
        recovered = (
            None if after is None else await rooms.recovered(conn.session_id, after, room.last_id)
        )
        conn.last_id = room.last_id
        hello = room.state.hello(
            last_id=conn.last_id, ts=now_ms(), role=who.role, actor_id=who.actor_id, name=who.name
        )
        if recovered is not None:
            hello["recovered"] = recovered
        await conn.send({"type": "websocket.send", "text": frame([hello])})
        if after is not None and after < conn.last_id:
            async for page in rooms.replay(conn.session_id, after, conn.last_id):
                if conn.closing:  # dropped meanwhile (too slow, banned): the writer sends the close
                    break
                events = [e.public() for e in page if conn.sees(e)]
                if events:
                    await conn.send({"type": "websocket.send", "text": frame(events)})
        live = hub.go_live(room, conn)
        if live:
            conn.push(frame(e.public() for e in live))
        conn.start()
        if conn.viewer_id is not None:
            state.track("joined", conn.session_id, conn.viewer_id, **(who.joined or {}))
            if room.state.pinned:
                state.track(
                    "impression",
                    conn.session_id,
                    conn.viewer_id,
                    product_id=room.state.pinned.get("product_id"),
                )

    async def _read(self, state: Any, room: Room, conn: Connection, receive: Receive) -> None:
        rooms: RoomService = state.rooms
        proto: RoomProtocol = conn.protocol
        while True:
            msg = await receive()
            if msg["type"] == "websocket.disconnect":
                return
            data = msg.get("text")
            if data is None:
                data = msg.get("bytes")
            if data is None:
                continue
            result = proto.receive(data, time.time())
            if result is None:
                continue
            if isinstance(result, Reject):
                self._reply(state, conn, result)
                continue
            try:
                assert room.state is not None
                await rooms.handle(conn, room.state, result)
            except VitrineError as exc:
                self._reply(state, conn, Reject(exc.code, exc.detail, result.ref))
            except Exception:
                log.exception(
                    "room intent failed", extra={"session": conn.session_id, "type": result.kind}
                )
                self._reply(
                    state,
                    conn,
                    Reject("internal", "the server could not do this; try again", result.ref),
                )

    @staticmethod
    def _reply(state: Any, conn: Connection, reject: Reject) -> None:
        state.metrics.room_rejected.labels(reject.code).inc()
        if not conn.push(frame([reject.event(now_ms())])):
            state.room_hub.drop_slow(conn)


room_socket = doc(
    "Room WebSocket `?after=`, token as subprotocol `vitrine.token.<token>`: chat, questions, votes, reactions, pins, moderation; "
    "frames are JSON arrays of events (see live.room.ws)",
    auth="viewer, host or staff",
    tag="room",
)(RoomSocket())
