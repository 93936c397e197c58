"""A relay worker process: serves WHEP viewers from a feed of encoded frames.

    VITRINE_RELAY_SECRET=... python -m rtc.worker HOST:PORT INDEX

It connects to the process holding the host's connection (the origin), says hello with the
shared secret, then answers ``watch`` requests (SDP offer in, answer out) for viewers the
origin places here, and forwards each frame it receives to its own viewers. Viewers'
keyframe requests go back upstream. It exits when the origin closes the link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from typing import Any

from aiortc import RTCConfiguration

from live.errors import VitrineError
from rtc import hooks
from rtc.broadcast import Broadcast
from rtc.load import CpuGauge
from rtc.peers import Peer, Viewer
from rtc.sdp import parse_offer
from rtc.service import ice_servers
from rtc.wire import WireError, json_message, parse_frame, parse_json, read_message

log = logging.getLogger("vitrine.rtc.worker")


class RelayWorker:
    def __init__(self, writer: asyncio.StreamWriter, servers_json: str) -> None:
        self.writer = writer
        self.servers = ice_servers(servers_json)
        self.broadcasts: dict[str, Broadcast] = {}
        self.peers: dict[str, Viewer] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.gauge = CpuGauge()
        self.expired: set[str] = set()  # viewers being closed for not connecting in time

    def send(self, obj: dict[str, Any]) -> None:
        if not self.writer.is_closing():
            self.writer.write(json_message(obj))

    def broadcast(
        self, session_id: str, codecs: dict[str, str], params: dict[str, dict[str, Any]]
    ) -> Broadcast:
        b = self.broadcasts.get(session_id)
        if b is None:
            b = self.broadcasts[session_id] = Broadcast(session_id)

            async def upstream() -> None:
                self.send({"op": "keyframe", "session": session_id})

            b.keyframe_source = upstream
        b.codecs.update(codecs)
        b.codec_params.update(params)
        return b

    async def watch(self, msg: dict[str, Any]) -> None:
        req, sid = msg["req"], str(msg["session"])
        try:
            offer = parse_offer(str(msg["sdp"]).encode(), sending=False)
            b = self.broadcast(sid, msg.get("codecs", {}), msg.get("params", {}))
            peer = Viewer(
                sid, RTCConfiguration(iceServers=list(self.servers)), b, msg.get("viewer_id")
            )
            try:
                answer = await peer.start(offer)
            except Exception:
                await peer.abort()
                raise
            timeout = float(msg.get("connect_timeout", 10.0))
        except VitrineError as exc:
            self.send(
                {
                    "op": "error",
                    "req": req,
                    "status": exc.status,
                    "code": exc.code,
                    "detail": exc.detail,
                }
            )
            return
        except Exception as exc:  # report, never crash the worker
            log.exception("watch failed")
            self.send(
                {
                    "op": "error",
                    "req": req,
                    "status": 500,
                    "code": "internal",
                    "detail": str(exc)[:200],
                }
            )
            return
        self.peers[peer.id] = peer
        peer.on_end = self._ended
        self.spawn(self._expire_unless_connected(peer, timeout))
        self.send(
            {"op": "answer", "req": req, "resource": peer.id, "sdp": answer, "etag": peer.etag}
        )

    def report_load(self) -> None:
        """Tell the origin this process's CPU and loop lag (it places viewers by them)."""
        connecting = sum(1 for p in self.peers.values() if not p.connected_once)
        self.send(
            {"op": "load", "cpu": self.gauge.busy, "lag": self.gauge.lag, "connecting": connecting}
        )

    async def _expire_unless_connected(self, peer: Viewer, after: float) -> None:
        """Free the slot of a viewer that has not completed ICE and DTLS in time."""
        await asyncio.sleep(after)
        if not peer.connected_once and not peer.closed:
            self.expired.add(peer.id)
            try:
                await peer.close()
            except Exception:
                log.exception("closing a viewer failed")

    async def _ended(self, peer: Peer) -> None:
        assert isinstance(peer, Viewer)
        self.peers.pop(peer.id, None)
        peer.detach()
        reason = "not_connected" if peer.id in self.expired else None
        self.expired.discard(peer.id)
        self.send({"op": "left", "resource": peer.id, "session": peer.session_id, "reason": reason})
        if not any(p.session_id == peer.session_id for p in self.peers.values()):
            b = self.broadcasts.pop(peer.session_id, None)
            if b is not None:
                b.close()

    async def stats(self, msg: dict[str, Any]) -> None:
        sid = msg.get("session")
        items = [await p.stats() for p in list(self.peers.values()) if p.session_id == sid]
        self.send({"op": "stats", "req": msg["req"], "items": items})

    async def handle(self, msg: dict[str, Any]) -> None:
        op = msg["op"]
        if op == "watch":
            await self.watch(msg)
        elif op == "leave":
            peer = self.peers.get(str(msg.get("resource")))
            if peer is not None:
                await peer.close()
        elif op == "candidates":
            peer = self.peers.get(str(msg.get("resource")))
            if peer is not None:
                try:
                    await peer.add_candidates(str(msg.get("fragment", "")))
                except VitrineError as exc:
                    log.info("bad trickled candidate: %s", exc.detail)
        elif op == "codecs":  # the host came back with another codec: its viewers reconnect
            b = self.broadcasts.get(str(msg.get("session")))
            if b is not None:
                b.codecs.update(msg.get("codecs", {}))
                b.codec_params.update(msg.get("params", {}))
                for peer in [p for p in self.peers.values() if p.broadcast is b]:
                    if not peer.takes_stream():
                        await peer.close()
        elif op == "stats":
            await self.stats(msg)
        elif op == "reap":
            for peer in [p for p in self.peers.values() if not p.connected_once]:
                if time.monotonic() - peer.created > float(msg.get("age", 30)):
                    await peer.close()

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                kind, payload = await read_message(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            if kind == b"F":
                sid, frame = parse_frame(payload)
                b = self.broadcasts.get(sid)
                if b is not None:
                    b.deliver(frame)
            else:
                self.spawn(self.handle(parse_json(payload)))

    async def close(self) -> None:
        for peer in list(self.peers.values()):
            peer.on_end = None
            with contextlib.suppress(Exception):
                await peer.close()
        for b in self.broadcasts.values():
            b.close()
        for t in self.tasks:
            t.cancel()


async def serve(address: str, secret: str, index: int) -> None:
    hooks.prepare_aiortc()
    host, port = address.rsplit(":", 1)
    loopback = os.environ.get("VITRINE_RTC_LOOPBACK", "").lower() in ("1", "true", "yes", "on")
    low, high = (int(os.environ.get(f"VITRINE_RTC_PORT_{k}", "0") or 0) for k in ("MIN", "MAX"))
    with hooks.loopback_only(loopback), hooks.udp_port_range(asyncio.get_running_loop(), low, high):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            json_message({"op": "hello", "secret": secret, "index": index, "pid": os.getpid()})
        )
        worker = RelayWorker(writer, os.environ.get("VITRINE_ICE_SERVERS", ""))
        worker.spawn(worker.gauge.run(then=worker.report_load))
        try:
            await worker.run(reader)
        except WireError:
            log.exception("bad message from the origin")
        finally:
            await worker.close()
            writer.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(
            "usage: VITRINE_RELAY_SECRET=... python -m rtc.worker HOST:PORT INDEX", file=sys.stderr
        )
        return 2
    # the origin's log format and redaction (one JSON object per line, no credential)
    from live.logs import configure

    configure(
        os.environ.get("VITRINE_LOG_LEVEL", "WARNING"), os.environ.get("VITRINE_LOG_FORMAT", "json")
    )
    asyncio.run(serve(args[0], os.environ.get("VITRINE_RELAY_SECRET", ""), int(args[1])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
