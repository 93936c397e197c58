"""The relay's rules: who may publish and watch, one publisher per session, viewer capacity,
host away/back, and cleanup. Routes call this; it knows nothing of HTTP."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from aiortc import RTCConfiguration, RTCIceServer
from sqlalchemy import select

from live.auth import Host, Principal, Staff, Viewer
from live.config import Settings
from live.db import Database
from live.errors import (
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    Unavailable,
    ValidationFailed,
)
from live.models import LiveSession, SessionViewer
from live.sessions import ensure_session
from rtc.admission import Client, Holdings, JoinBuckets
from rtc.broadcast import Broadcast
from rtc.load import CpuGauge
from rtc.peers import Peer, Publisher
from rtc.peers import Viewer as ViewerPeer
from rtc.sdp import Offer
from rtc.workers import WorkerLink, WorkerPool

log = logging.getLogger("vitrine.rtc")
Emit = Callable[[str, str, dict[str, Any]], Awaitable[Any]]
SetStatus = Callable[[str, str], Awaitable[Any]]


def ice_servers(raw: str) -> list[RTCIceServer]:
    """``VITRINE_ICE_SERVERS`` (a JSON list) as aiortc servers; empty: none (never a public STUN)."""
    import orjson

    if not raw.strip():
        return []
    try:
        items = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"VITRINE_ICE_SERVERS is not JSON: {exc}") from exc
    if not isinstance(items, list):
        raise ValueError("VITRINE_ICE_SERVERS must be a JSON list")
    servers = []
    for item in items:
        if not isinstance(item, dict) or "urls" not in item:
            raise ValueError("each ICE server needs `urls`")
        servers.append(
            RTCIceServer(
                urls=item["urls"], username=item.get("username"), credential=item.get("credential")
            )
        )
    return servers


class ProcessLoad(NamedTuple):
    """One relay process as admission sees it (``link``: ``None`` for this process)."""

    worker: int
    viewers: int
    cpu: float  # share of one core its event loop used in the last second
    lag: float  # its event loop's worst lateness in the last 5 s, seconds
    link: WorkerLink | None = None


@dataclass
class RemoteViewer:
    """A viewer served by a relay worker process (the origin only routes its requests)."""

    session_id: str
    id: str
    etag: str
    answer: str
    link: WorkerLink
    kind: str = "viewer"


class RelayService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        set_status: SetStatus,
        emit: Emit,
        on_forward: Callable[[str, int], None] | None = None,
        on_reject: Callable[[str], None] | None = None,
        on_close: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.set_status = set_status
        self.emit = emit
        self.servers = ice_servers(settings.ice_servers)
        self.max_viewers = settings.relay_max_viewers
        self.max_cpu = settings.relay_max_cpu
        self.max_lag_ms = settings.relay_max_lag_ms
        self.gauge = CpuGauge()
        self.connect_timeout = settings.whep_connect_timeout
        self.joins = JoinBuckets(settings.whep_joins_per_minute)
        self.holdings = Holdings(settings.whep_per_viewer)
        self.closed_early: dict[str, int] = {}  # "not_connected" / "per_viewer" -> viewers closed
        self._on_close = on_close
        self._joining = 0  # local viewers being negotiated
        self.broadcasts: dict[str, Broadcast] = {}
        self.publishers: dict[str, Publisher] = {}  # session id -> current publisher
        self.peers: dict[str, Peer] = {}  # resource id -> peer
        self._on_forward = on_forward
        self._on_reject = on_reject
        self._tasks: set[asyncio.Task[Any]] = set()
        self.rejected: dict[str, int] = {}
        self.remote: dict[str, RemoteViewer] = {}  # resource id -> viewer on a worker
        self.pool: WorkerPool | None = None
        self._feeds: dict[tuple[str, WorkerLink], Callable[[Any], None]] = {}
        self._pool_env: dict[str, str] = {}
        self._pool_size = 0

    def use_workers(self, count: int, env: dict[str, str]) -> None:
        """Relay viewers through ``count`` worker processes too (started at the first publish)."""
        self._pool_size, self._pool_env = count, env

    async def _start_pool(self) -> None:
        if self._pool_size > 0 and self.pool is None:
            self.pool = WorkerPool(self._worker_keyframe, self._worker_left)
            self._spawn(self.pool.start(self._pool_size, self._pool_env))

    def _worker_keyframe(self, session_id: str) -> None:
        b = self.broadcasts.get(session_id)
        if b is not None:
            b.request_keyframe("join")

    def _worker_left(
        self, link: WorkerLink, resource_id: str, session_id: str, reason: str | None = None
    ) -> None:
        self.remote.pop(resource_id, None)
        self.holdings.remove(resource_id)
        if reason:
            self._closed_early(reason)
        if session_id not in link.sessions():
            sink = self._feeds.pop((session_id, link), None)
            b = self.broadcasts.get(session_id)
            if sink is not None and b is not None:
                b.feeds.discard(sink)
        self._forget_if_idle(session_id)

    def config(self) -> RTCConfiguration:
        return RTCConfiguration(iceServers=list(self.servers))

    def broadcast(self, session_id: str) -> Broadcast:
        b = self.broadcasts.get(session_id)
        if b is None:
            b = self.broadcasts[session_id] = Broadcast(session_id, on_forward=self._on_forward)
        return b

    @property
    def viewer_count(self) -> int:
        return sum(1 for p in self.peers.values() if isinstance(p, ViewerPeer))

    def _reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        if self._on_reject is not None:
            self._on_reject(reason)

    def _closed_early(self, reason: str) -> None:
        self.closed_early[reason] = self.closed_early.get(reason, 0) + 1
        if self._on_close is not None:
            self._on_close(reason)

    @property
    def connecting(self) -> int:
        """Viewer connections that hold a slot but have not connected yet (all processes)."""
        here = sum(
            1
            for p in self.peers.values()
            if isinstance(p, ViewerPeer) and not p.connected_once and not p.closed
        )
        links = self.pool.live_links() if self.pool is not None else []
        return here + self._joining + sum(k.connecting + k.joining for k in links)

    # -- publishing --------------------------------------------------------------------------
    async def session(self, session_id: str) -> LiveSession:
        """The session, or 404 (checked before the offer is read)."""
        return await ensure_session(self.db, session_id)

    async def publish(self, sess: LiveSession, who: Staff | Host, offer: Offer) -> Publisher:
        session_id = sess.id
        if sess.status == "ended":
            raise Conflict("the session has ended", code="session_ended")
        identity = f"host:{who.staff_id}" if isinstance(who, Host) else f"staff:{who.staff_id}"
        current = self.publishers.get(session_id)
        if current is not None and not current.closed:
            lost = current.state in ("failed", "closed", "disconnected") or current.stopped_media
            if current.identity != identity and not lost:
                self._reject("already_publishing")
                raise Conflict(
                    "someone is already publishing this session", code="already_publishing"
                )
        await self._start_pool()
        broadcast = self.broadcast(session_id)
        keep = self._codecs_to_keep(broadcast, offer)
        before = dict(broadcast.codecs)
        pub = Publisher(session_id, self.config(), broadcast, identity)
        try:
            pub.answer = await pub.start(offer, keep)
        except Exception:
            await pub.abort()
            raise
        if current is not None and not current.closed:
            current.on_end = None  # replaced: the new publisher takes over without an "away"
            await current.close()
        self.publishers[session_id] = pub
        self.peers[pub.id] = pub
        pub.on_end = self._publisher_ended
        broadcast.keyframe_source = pub.request_keyframe
        pub.pc.on("connectionstatechange", lambda: self._publisher_state(pub))
        try:
            await self.set_status(session_id, "live")
        except Exception:
            await self._drop(pub)
            raise
        changed = any(broadcast.codecs.get(k) != codec for k, codec in before.items())
        if changed and self._watching(session_id):
            await self._codec_changed(broadcast)
        return pub

    def _watching(self, session_id: str) -> bool:
        return any(
            isinstance(p, ViewerPeer) and p.session_id == session_id for p in self.peers.values()
        ) or any(r.session_id == session_id for r in self.remote.values())

    def _codecs_to_keep(
        self, broadcast: Broadcast, offer: Offer
    ) -> dict[str, tuple[str, dict[str, Any]]]:
        """The codecs a returning host should keep: those its viewers receive, if the offer has them."""
        if not self._watching(broadcast.session_id):
            return {}
        keep = {}
        for kind, codec in broadcast.codecs.items():
            params = broadcast.codec_params.get(kind, {})
            if offer.offers(kind, codec, params):
                keep[kind] = (codec, params)
        return keep

    async def _codec_changed(self, broadcast: Broadcast) -> None:
        """The host came back with a codec its viewers did not negotiate (another encoder): their
        connections cannot carry it, so close them and tell the room; pages reconnect at once."""
        sid = broadcast.session_id
        log.warning(
            "host changed codec: viewers reconnect",
            extra={"session": sid, "codecs": dict(broadcast.codecs)},
        )
        for peer in [p for p in self.peers.values() if isinstance(p, ViewerPeer)]:
            if peer.broadcast is broadcast and not peer.takes_stream():
                await self._drop(peer)
        for link in self.pool.live_links() if self.pool is not None else []:
            if sid in link.sessions():
                link.notify(
                    "codecs",
                    session=sid,
                    codecs=dict(broadcast.codecs),
                    params=dict(broadcast.codec_params),
                )
        await self._emit(sid, {"status": "live", "host": "back", "stream": "changed"})

    def _publisher_state(self, pub: Publisher) -> None:
        if pub.state == "connected" and self.broadcasts.get(pub.session_id) is pub.broadcast:
            b = pub.broadcast
            if b.host_away:
                b.host_away = False
                self._spawn(self.emit(pub.session_id, "status", {"status": "live", "host": "back"}))

    async def _publisher_ended(self, peer: Peer) -> None:
        assert isinstance(peer, Publisher)
        self.peers.pop(peer.id, None)
        if self.publishers.get(peer.session_id) is peer:
            log.warning(
                "host connection ended (%s, ice %s, media %s)",
                peer.state,
                peer.pc.iceConnectionState,
                "stopped" if peer.stopped_media else "flowing",
                extra={"session": peer.session_id},
            )
            del self.publishers[peer.session_id]
            b = peer.broadcast
            b.keyframe_source = None
            b.host_away = True
            await self._emit(peer.session_id, {"status": "live", "host": "away"})
            self._forget_if_idle(peer.session_id)

    async def _emit(self, session_id: str, data: dict[str, Any]) -> None:
        try:
            await self.emit(session_id, "status", data)
        except Exception:  # the room must never break the relay
            log.exception("status event failed", extra={"session": session_id})

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- watching ----------------------------------------------------------------------------
    async def watch(
        self, sess: LiveSession, who: Principal | None, offer: Offer, client: Client | None = None
    ) -> ViewerPeer | RemoteViewer:
        """Admit a viewer (:mod:`rtc.admission`): the session's rules, then the joins its address
        may start, the relay's capacity; once answered, the viewer's oldest connection over
        ``VITRINE_WHEP_PER_VIEWER`` closes, and this one closes unless it connects in time."""
        session_id = sess.id
        if isinstance(who, Viewer):
            async with self.db.read() as s:
                row = await s.get(SessionViewer, who.viewer_id)
            if row is None or row.session_id != session_id:
                raise Forbidden("this viewer is not part of the session", code="wrong_session")
            if row.banned:
                raise Forbidden("you have been removed from this session", code="banned")
        broadcast = self.broadcasts.get(session_id)
        if broadcast is None or not broadcast.codecs:
            self._reject("not_live")
            raise Conflict(
                "the host is not streaming yet", code="not_live", headers={"Retry-After": "3"}
            )
        viewer_id = who.viewer_id if isinstance(who, Viewer) else None
        client = client or Client("-", None)
        wait = self.joins.take(client.address)
        if wait > 0:
            self._reject("rate_limited")
            raise RateLimited(
                "too many viewers joined from this address just now; try again shortly",
                code="too_many_joins",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        try:
            place = self._place()
        except Unavailable:
            self.joins.give_back(client.address)  # it took no slot
            raise
        identity = f"{session_id}/{client.identity}" if client.identity else None
        if place is not None:
            rv = await self._watch_remote(place, broadcast, offer, viewer_id)
            self._hold(identity, rv.id)
            return rv
        peer = ViewerPeer(session_id, self.config(), broadcast, viewer_id)
        self._joining += 1  # counted against capacity while it negotiates
        try:
            peer.answer = await peer.start(offer)
        except ValidationFailed:
            self._reject("codec_unsupported")
            await peer.abort()
            raise
        except Exception:
            await peer.abort()
            raise
        finally:
            self._joining -= 1
        self.peers[peer.id] = peer
        peer.on_end = self._viewer_ended
        self._spawn(self._expire_unless_connected(peer))
        self._hold(identity, peer.id)
        return peer

    def _hold(self, identity: str | None, resource_id: str) -> None:
        """Count a new connection against its viewer; close their oldest over the limit."""
        for old in self.holdings.add(identity, resource_id):
            self._closed_early("per_viewer")
            log.info("viewer over %d connections: closing the oldest", self.holdings.limit)
            rv = self.remote.get(old)
            if rv is not None:
                rv.link.leave(old)
            elif (peer := self.peers.get(old)) is not None:
                self._spawn(self._drop_quietly(peer))

    async def _expire_unless_connected(self, peer: Peer) -> None:
        """Free the slot of a viewer that has not completed ICE and DTLS in time."""
        await asyncio.sleep(self.connect_timeout)
        if not peer.connected_once and not peer.closed:
            log.info(
                "viewer did not connect in %.0f s: closing it",
                self.connect_timeout,
                extra={"session": peer.session_id, "resource": peer.id},
            )
            self._closed_early("not_connected")
            await self._drop_quietly(peer)

    async def _drop_quietly(self, peer: Peer) -> None:
        try:
            await self._drop(peer)
        except Exception:  # a background close must never fail unseen
            log.exception("closing a viewer failed", extra={"session": peer.session_id})

    def loads(self) -> list[ProcessLoad]:
        """Each relay process's viewers (those negotiating included), CPU and loop lag."""
        links = self.pool.live_links() if self.pool is not None else []
        here = ProcessLoad(0, self.viewer_count + self._joining, self.gauge.busy, self.gauge.lag)
        return [here] + [ProcessLoad(k.index, k.load, k.cpu, k.lag, k) for k in links]

    def _place(self) -> WorkerLink | None:
        """The least loaded process with room: ``None`` for this one; 503 when all are full.

        A process has room below ``VITRINE_RELAY_MAX_VIEWERS`` viewers, below
        ``VITRINE_RELAY_MAX_CPU`` of a core and while its event loop runs less than
        ``VITRINE_RELAY_MAX_LAG_MS`` late (:mod:`rtc.load`)."""
        options = self.loads()
        free = [
            p
            for p in options
            if p.viewers < self.max_viewers
            and p.cpu < self.max_cpu
            and p.lag * 1000 < self.max_lag_ms
        ]
        if not free:
            full = all(p.viewers >= self.max_viewers for p in options)
            self._reject("capacity" if full else "cpu")
            raise Unavailable(
                "this relay is full; try again shortly"
                if full
                else "this relay is at the limit of its CPU or running late; try again shortly",
                code="relay_full",
                headers={"Retry-After": "10" if full else "3"},
            )
        return min(free, key=lambda p: (p.viewers, p.worker)).link

    async def _watch_remote(
        self, link: WorkerLink, broadcast: Broadcast, offer: Offer, viewer_id: str | None
    ) -> RemoteViewer:
        sid = broadcast.session_id
        try:
            reply = await link.watch(
                sid,
                offer.sdp,
                dict(broadcast.codecs),
                dict(broadcast.codec_params),
                viewer_id,
                self.connect_timeout,
            )
        except ValidationFailed:
            self._reject("codec_unsupported")
            raise
        rv = RemoteViewer(
            sid, str(reply["resource"]), str(reply.get("etag", '"0"')), str(reply["sdp"]), link
        )
        self.remote[rv.id] = rv
        if (sid, link) not in self._feeds:

            def sink(frame: Any, link: WorkerLink = link) -> None:
                link.send_frame(sid, frame)

            self._feeds[(sid, link)] = sink
            broadcast.feeds.add(sink)
        return rv

    async def _viewer_ended(self, peer: Peer) -> None:
        assert isinstance(peer, ViewerPeer)
        self.peers.pop(peer.id, None)
        self.holdings.remove(peer.id)
        peer.detach()
        self._forget_if_idle(peer.session_id)

    # -- resources ---------------------------------------------------------------------------
    def resource(self, session_id: str, resource_id: str, kind: str) -> Peer:
        peer = self.peers.get(resource_id)
        if peer is None or peer.session_id != session_id or peer.kind != kind:
            raise NotFound("no such WebRTC resource (it may have ended)", code="resource_not_found")
        return peer

    def remote_viewer(self, session_id: str, resource_id: str) -> RemoteViewer | None:
        rv = self.remote.get(resource_id)
        return rv if rv is not None and rv.session_id == session_id else None

    async def stop(self, session_id: str, resource_id: str, kind: str) -> None:
        rv = self.remote_viewer(session_id, resource_id) if kind == "viewer" else None
        if rv is not None:
            rv.link.leave(resource_id)
            return
        peer = self.resource(session_id, resource_id, kind)
        await self._drop(peer)

    async def _drop(self, peer: Peer) -> None:
        await peer.close()
        self.peers.pop(peer.id, None)

    def _forget_if_idle(self, session_id: str) -> None:
        b = self.broadcasts.get(session_id)
        if b is None or session_id in self.publishers:
            return
        busy = any(p.session_id == session_id for p in self.peers.values())
        if not busy and not any(r.session_id == session_id for r in self.remote.values()):
            b.close()
            del self.broadcasts[session_id]

    # -- stats -------------------------------------------------------------------------------
    async def stream_stats(self, session_id: str, *, max_viewers: int = 500) -> dict[str, Any]:
        b = self.broadcasts.get(session_id)
        pub = self.publishers.get(session_id)
        viewers = [
            p
            for p in self.peers.values()
            if isinstance(p, ViewerPeer) and p.session_id == session_id
        ]
        host = (
            "publishing" if pub is not None else ("away" if b is not None and b.codecs else "none")
        )
        publisher: dict[str, Any] | None = None
        if b is not None:
            s = b.stats
            publisher = {
                "codecs": dict(b.codecs),
                "video_bitrate": s.bitrate["video"],
                "audio_bitrate": s.bitrate["audio"],
                "bitrate": sum(s.bitrate.values()),
                "fps": s.fps,
                "width": s.width,
                "height": s.height,
                "keyframes": s.keyframes,
                "frames": s.frames_total,
                "keyframe_requests": b.keyframe_requests,
                "state": pub.state if pub is not None else None,
            }
            if pub is not None:
                publisher.update(await pub.stats())
        items = [{**await v.stats(), "worker": 0} for v in viewers[:max_viewers]]
        count = len(viewers)
        for link in self.pool.live_links() if self.pool is not None else []:
            if session_id in link.sessions():
                reply = await link.request("stats", session=session_id)
                remote = reply.get("items", [])
                count += len(remote)
                items += [
                    {**i, "worker": link.index} for i in remote[: max(0, max_viewers - len(items))]
                ]
        loads = self.loads()
        return {
            "session_id": session_id,
            "host": host,
            "publisher": publisher,
            "viewers": {"count": count, "items": items},
            "workers": len(loads),
            "load": [
                {
                    "worker": p.worker,
                    "viewers": p.viewers,
                    "cpu": round(p.cpu, 3),
                    "lag_ms": round(p.lag * 1000, 1),
                }
                for p in loads
            ],
        }

    async def close_ended(self) -> list[str]:
        """Stop the streams of sessions that have ended (the host's and every viewer's connection)."""
        if not self.broadcasts:
            return []
        ids = list(self.broadcasts)
        async with self.db.read() as s:
            ended = list(
                (
                    await s.scalars(
                        select(LiveSession.id).where(
                            LiveSession.id.in_(ids), LiveSession.status == "ended"
                        )
                    )
                ).all()
            )
        for sid in ended:
            pub = self.publishers.pop(sid, None)
            if pub is not None:
                pub.on_end = None
                await self._drop(pub)
            for peer in [p for p in self.peers.values() if p.session_id == sid]:
                await self._drop(peer)
            for rv in [r for r in self.remote.values() if r.session_id == sid]:
                rv.link.leave(rv.id)
            self._forget_if_idle(sid)
        return ended

    async def reap(self, max_age: float = 30.0) -> int:
        """Close peers that never connected (a closed tab before ICE finished); viewers are
        closed sooner, one by one, ``VITRINE_WHEP_CONNECT_TIMEOUT`` after their answer."""
        now = time.monotonic()
        stale = [
            p for p in self.peers.values() if not p.connected_once and now - p.created > max_age
        ]
        for peer in stale:
            await self._drop(peer)
        for link in self.pool.live_links() if self.pool is not None else []:
            link.notify("reap", age=max_age)
        return len(stale)

    async def close(self) -> None:
        for peer in list(self.peers.values()):
            peer.on_end = None
            try:
                await peer.close()
            except Exception:
                log.exception("closing a peer failed")
        self.peers.clear()
        self.publishers.clear()
        for b in self.broadcasts.values():
            b.close()
        self.broadcasts.clear()
        for task in self._tasks:
            task.cancel()
        if self.pool is not None:
            await self.pool.close()
            self.pool = None
