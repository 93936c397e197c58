"""The per-process fan-out hub: local connections by session, batching, presence and pulses.

The bus hands every event of a watched session to :meth:`Hub.deliver` (in id order, any
duplicate dropped by id) and the hub batches it: once per ``room_tick_ms`` a room applies its
batch to the room's :class:`RoomState`, serialises it once (one JSON array for viewers, one
for host/staff when staff-only events are in it) and appends the same text to each
connection's bounded queue. A full queue closes that connection (4408), never slowing others.

Nothing stored is shown before it is durable: the room service publishes a stored event
between :meth:`Hub.hold` and :meth:`Hub.release`, and a flush sends the batch only up to the
first event this process published whose commit is still pending (or whose id is still being
assigned); the rest follows as soon as it is committed. So a chat's echo to its sender is its
acknowledgement: the message is in the database. ``room.last_id`` is the last id flushed, the
position a hello and a replay describe.

A background pulse emits aggregated ``reaction`` counts (about three times a second),
``presence`` (at most once a second, when the total changes) and analytics heartbeats
(every 10 s per connected viewer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from asyncio import Future
from collections.abc import Awaitable, Callable
from typing import Any

from live.metrics import Metrics
from live.room.bus import EventBus
from live.room.connection import Connection
from live.room.events import Event, frames
from live.room.presence import Presence
from live.room.protocol import RateLimiter
from live.room.state import RoomState

log = logging.getLogger("vitrine.room.hub")

CLOSE_SLOW = 4408
CLOSE_FORBIDDEN = 4403
PENDING_PER_FRAME = 20  # live events held for a replaying connection, per frame of its queue
REACTION_INTERVAL = 1 / 3
PRESENCE_INTERVAL = 1.0
HEARTBEAT_INTERVAL = 10.0

Emit = Callable[..., Awaitable[dict[str, Any]]]
Track = Callable[..., None]
LoadState = Callable[[str], Awaitable[RoomState]]


class TooManySockets(Exception):
    """One viewer opened more room sockets than ``VITRINE_MAX_SOCKETS_PER_VIEWER``."""


class Room:
    __slots__ = (
        "batch",
        "conns",
        "flushing",
        "holds",
        "last_id",
        "loader",
        "ready",
        "seen_id",
        "session_id",
        "state",
        "uncommitted",
        "viewers",
    )

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.conns: set[Connection] = set()
        self.viewers: dict[str, int] = {}  # viewer id -> local connections
        self.batch: list[Event] = []  # delivered, not yet flushed (nor applied to the state)
        self.flushing = False
        self.last_id = 0  # the last id flushed: what connections and the state have seen
        self.seen_id = 0  # the last id delivered
        self.holds: list[int] = []  # per publish in flight here: ``seen_id`` when it began
        self.uncommitted: set[int] = set()  # ids published here whose commit is pending
        self.state: RoomState | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.loader: asyncio.Task[None] | None = None


class Hub:
    def __init__(
        self,
        *,
        bus: EventBus,
        presence: Presence,
        metrics: Metrics,
        track: Track,
        tick_ms: int,
        limiter: RateLimiter,
    ) -> None:
        self.bus, self.presence, self.metrics, self.track = bus, presence, metrics, track
        self.load_state: LoadState | None = None
        self.tick = tick_ms / 1000
        self.limiter = limiter
        self.emit: Emit | None = None
        self.rooms: dict[str, Room] = {}
        self._gone: set[str] = set()
        self._reactions: dict[str, dict[str, int]] = {}
        self._task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()

    def bind(self, *, emit: Emit, load_state: LoadState) -> None:
        """Connect the hub to the room service (which is built on top of it)."""
        self.emit, self.load_state = emit, load_state

    # -- connections -------------------------------------------------------------------------
    async def join(self, conn: Connection, per_viewer: int = 0) -> Room:
        """Register a connection (in replay mode) and return its loaded room. A viewer holding
        ``per_viewer`` sockets of this room already gets :class:`TooManySockets` (0: no limit)."""
        sid = conn.session_id
        room = self.rooms.get(sid)
        if (
            per_viewer
            and room is not None
            and conn.viewer_id is not None
            and room.viewers.get(conn.viewer_id, 0) >= per_viewer
        ):
            raise TooManySockets(f"at most {per_viewer} connections per viewer")
        if room is None:
            room = self.rooms[sid] = Room(sid)
            self._gone.discard(sid)
            room.loader = asyncio.create_task(self._load(room), name=f"room-load-{sid}")
        room.conns.add(conn)
        if conn.viewer_id is not None:
            room.viewers[conn.viewer_id] = room.viewers.get(conn.viewer_id, 0) + 1
        self.metrics.ws_connections.inc()
        try:
            await asyncio.shield(room.ready)
        except BaseException:
            self.leave(conn)
            raise
        return room

    async def _load(self, room: Room) -> None:
        try:
            room.last_id = room.seen_id = await self.bus.watch(room.session_id)
            assert self.load_state is not None, "Hub.bind() was not called"
            room.state = await self.load_state(room.session_id)
            self._flush(room)  # what was delivered while the state loaded
            room.ready.set_result(None)
        except Exception as exc:
            if self.rooms.get(room.session_id) is room:
                del self.rooms[room.session_id]
                self.bus.unwatch(room.session_id)
            room.ready.set_exception(exc)

    def leave(self, conn: Connection) -> None:
        room = self.rooms.get(conn.session_id)
        if room is None or conn not in room.conns:
            return
        room.conns.discard(conn)
        self.metrics.ws_connections.dec()
        vid = conn.viewer_id
        if vid is not None:
            left = room.viewers.get(vid, 1) - 1
            if left:
                room.viewers[vid] = left
            else:
                room.viewers.pop(vid, None)
        if not room.conns:
            del self.rooms[conn.session_id]
            self._gone.add(conn.session_id)
            self.bus.unwatch(conn.session_id)
            with contextlib.suppress(KeyError):
                self.metrics.viewers.remove(conn.session_id)

    def go_live(self, room: Room, conn: Connection) -> list[Event]:
        """End a connection's replay: the pending events it must still get, then live frames."""
        events = [e for e in conn.pending if e.id > conn.last_id and conn.sees(e)]
        conn.pending = []
        conn.replaying = False
        if events:
            conn.last_id = events[-1].id
        return events

    # -- events ------------------------------------------------------------------------------
    def deliver(self, ev: Event) -> None:
        room = self.rooms.get(ev.session_id)
        if room is None or ev.id <= room.seen_id:
            return
        room.seen_id = ev.id
        self.metrics.room_events.labels(ev.type).inc()
        room.batch.append(ev)
        if not room.flushing:
            room.flushing = True
            if self.tick > 0:
                self._loop.call_later(self.tick, self._flush, room)
            else:
                self._loop.call_soon(self._flush, room)

    # -- durable before visible --------------------------------------------------------------
    def hold(self, session_id: str) -> tuple[Room, int] | None:
        """A stored event is about to be published here: hold back what may follow it."""
        room = self.rooms.get(session_id)
        if room is None:
            return None
        room.holds.append(room.seen_id)
        return room, room.seen_id

    def release(
        self,
        hold: tuple[Room, int] | None,
        event_id: int | None,
        commit: Future[None] | None,
        sender: Connection | None = None,
    ) -> None:
        """The publish is done (``event_id`` None: it failed); ``commit`` completes when the
        event is durable. Until then the room shows nothing from that event on; or, for a
        message a socket sent (``sender``), that socket alone gets nothing from it on: its echo
        is its acknowledgement, so it follows the commit, while the others see it at once."""
        if hold is None:
            return
        room, mark = hold
        room.holds.remove(mark)
        pending = event_id is not None and commit is not None and not commit.done()
        if pending and sender is not None and not sender.closing:
            assert event_id is not None and commit is not None
            sender.awaiting.add(event_id)
            self.metrics.room_uncommitted.inc()
            commit.add_done_callback(lambda f: self._acked(room, sender, event_id, f))
        elif pending:
            assert event_id is not None and commit is not None
            room.uncommitted.add(event_id)
            self.metrics.room_uncommitted.inc()
            commit.add_done_callback(lambda f: self._committed(room, event_id, f))
        elif event_id is not None and commit is not None and _failed(commit):
            room.batch = [e for e in room.batch if e.id != event_id]
        self._kick(room)

    def _committed(self, room: Room, event_id: int, commit: Future[None]) -> None:
        room.uncommitted.discard(event_id)
        self.metrics.room_uncommitted.dec()
        if _failed(commit):  # never stored: never shown here (its sender gets an error)
            room.batch = [e for e in room.batch if e.id != event_id]
        self._kick(room)

    def _acked(self, room: Room, conn: Connection, event_id: int, commit: Future[None]) -> None:
        """A socket's own message is committed (or not): send it what it was held from."""
        conn.awaiting.discard(event_id)
        self.metrics.room_uncommitted.dec()
        if _failed(commit):  # never stored: not echoed (the sender is told `not_stored`)
            conn.held = [e for e in conn.held if e.id != event_id]
        if conn.awaiting or not conn.held or conn.closing:
            return
        held, conn.held = conn.held, []
        for text in frames([e.public() for e in held if conn.sees(e)]) if held else []:
            if not conn.push(text):
                self.drop_slow(conn)
                return

    def _kick(self, room: Room) -> None:
        """Flush what was waiting for a commit (or a publish) now: its tick has passed."""
        if room.batch and not room.flushing:
            room.flushing = True
            self._loop.call_soon(self._flush, room)

    def _ready(self, room: Room) -> list[Event]:
        """Take the events that may be shown now off the front of the batch."""
        batch = room.batch
        cut = len(batch)
        if room.holds:
            limit = min(room.holds)
            cut = next((i for i, e in enumerate(batch) if e.id > limit), cut)
        if room.uncommitted:
            cut = next((i for i, e in enumerate(batch[:cut]) if e.id in room.uncommitted), cut)
        events, room.batch = batch[:cut], batch[cut:]
        return events

    def _flush(self, room: Room) -> None:
        room.flushing = False
        if room.state is None:  # still loading: the loader flushes
            return
        events = self._ready(room)
        if not events:
            return
        for ev in events:
            room.state.apply(ev)
            if ev.type == "moderation":
                self._moderate(room, ev)
            elif ev.type == "pin":
                self._impressions(room, ev.data.get("product_id"))
            elif ev.type == "presence":
                self.metrics.viewers.labels(ev.session_id).set(ev.data.get("viewers", 0))
        room.last_id = events[-1].id
        if not room.conns:
            return
        t0 = time.perf_counter()
        everyone = [e.public() for e in events if e.audience == "all"]
        staff_only = len(everyone) != len(events)
        viewer_texts = frames(everyone) if everyone else []
        staff_texts = frames([e.public() for e in events]) if staff_only else viewer_texts
        last = events[-1].id
        sent = 0
        for conn in list(room.conns):
            if conn.replaying:
                conn.pending.extend(events)
                if len(conn.pending) > PENDING_PER_FRAME * conn.limit:  # its replay cannot keep up
                    self.drop_slow(conn)
                continue
            if conn.awaiting:  # waiting for its own message's commit: keep the order
                conn.held.extend(events)
                conn.last_id = last
                if len(conn.held) > PENDING_PER_FRAME * conn.limit:
                    self.drop_slow(conn)
                continue
            texts = staff_texts if conn.is_staff else viewer_texts
            conn.last_id = last
            for text in texts:
                if not conn.push(text):
                    self.drop_slow(conn)
                    break
                sent += 1
        self.metrics.room_frames_sent.inc(sent)
        self.metrics.fanout_seconds.observe(time.perf_counter() - t0)

    def drop_slow(self, conn: Connection) -> None:
        self.metrics.ws_dropped_slow.inc()
        self.leave(conn)
        conn.close(CLOSE_SLOW, "too slow: reconnect with after=<last id>")

    def _moderate(self, room: Room, ev: Event) -> None:
        vid = ev.data.get("viewer_id")
        for conn in list(room.conns):
            if conn.viewer_id != vid:
                continue
            if ev.data.get("action") == "ban":
                self.leave(conn)
                conn.close(CLOSE_FORBIDDEN, "banned from this session")
            elif ev.data.get("action") == "mute":
                proto = getattr(conn, "protocol", None)
                if proto is not None:
                    proto.muted_until_ms = int(ev.data.get("until", 0))

    def _impressions(self, room: Room, product_id: Any) -> None:
        for vid in room.viewers:
            self.track("impression", room.session_id, vid, product_id=product_id)

    def react(self, session_id: str, kind: str) -> None:
        counts = self._reactions.setdefault(session_id, {})
        counts[kind] = counts.get(kind, 0) + 1

    # -- pulse -------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._pulse(), name="room-pulse")

    async def _pulse(self) -> None:
        next_presence = next_heartbeat = time.monotonic()
        while True:
            await asyncio.sleep(REACTION_INTERVAL)
            now = time.monotonic()
            try:
                await self._flush_reactions()
                if now >= next_presence:
                    next_presence = now + PRESENCE_INTERVAL
                    await self._presence()
                    self.limiter.prune(time.time())
                if now >= next_heartbeat:
                    next_heartbeat = now + HEARTBEAT_INTERVAL
                    for room in list(self.rooms.values()):
                        for vid in list(room.viewers):
                            self.track("heartbeat", room.session_id, vid)
            except Exception:  # a pulse must survive a database or Redis hiccup
                log.exception("room pulse failed")

    async def _flush_reactions(self) -> None:
        pending, self._reactions = self._reactions, {}
        if self.emit is None:
            return
        for sid, counts in pending.items():
            await self.emit(sid, "reaction", {"counts": counts}, store=False)

    async def _presence(self) -> None:
        counts = {sid: len(room.viewers) for sid, room in self.rooms.items()}
        counts.update({sid: 0 for sid in self._gone if sid not in counts})
        self._gone.clear()
        changes = await self.presence.changes(counts)
        if self.emit is not None:
            for sid, n in changes.items():
                await self.emit(sid, "presence", {"viewers": n}, store=False)

    async def close(self, code: int = 1012, reason: str = "server restarting") -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for room in list(self.rooms.values()):
            for conn in list(room.conns):
                conn.close(code, reason)
        with contextlib.suppress(Exception):
            await self.presence.leave(list(self.rooms))


def _failed(fut: Future[None]) -> bool:
    return fut.cancelled() or fut.exception() is not None
