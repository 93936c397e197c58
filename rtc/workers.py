"""Relay worker processes, seen from the origin (the process holding the host's connection).

The origin listens on a TCP socket; each worker connects, proves the shared secret, and is
then a :class:`WorkerLink`: the origin sends it ``watch`` requests for the viewers it places
there and streams the encoded frames of every session it has viewers for. A link that falls
behind (its socket buffer over the limit) skips frames until the next keyframe, like a slow
viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from live.errors import Unavailable, VitrineError
from rtc.frames import EncodedFrame
from rtc.wire import WireError, frame_message, json_message, parse_json, read_message

log = logging.getLogger("vitrine.rtc.workers")
REQUEST_TIMEOUT = 20.0
LAG_BYTES = 8 * 1024 * 1024


class WorkerLink:
    def __init__(
        self,
        index: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_keyframe: Callable[[str], None],
        on_left: Callable[[WorkerLink, str, str, str | None], None],
    ) -> None:
        self.index = index
        self.reader, self.writer = reader, writer
        self.on_keyframe, self.on_left = on_keyframe, on_left
        self.viewers: dict[str, str] = {}  # resource id -> session id
        self.lagging: set[tuple[str, str]] = set()  # (session, kind) skipping to a keyframe
        self.frames_dropped = 0
        self.joining = 0
        self.lag = 0.0  # the worker's event loop lateness (rtc.load), seconds
        self.cpu = 0.0  # the worker's loop CPU (rtc.load), reported four times a second
        self.connecting = 0  # its viewers not connected yet, reported with the load
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self.closed = False

    @property
    def load(self) -> int:
        return len(self.viewers) + self.joining

    def sessions(self) -> set[str]:
        return set(self.viewers.values())

    def send_frame(self, session_id: str, frame: EncodedFrame) -> None:
        if self.closed:
            return
        key = (session_id, frame.kind)
        if self.writer.transport.get_write_buffer_size() > LAG_BYTES:
            self.lagging.add(key)
            self.frames_dropped += 1
            return
        if key in self.lagging:
            if frame.kind == "video" and not frame.keyframe:
                self.frames_dropped += 1
                return
            self.lagging.discard(key)
        self.writer.write(frame_message(session_id, frame))

    async def request(self, op: str, **data: Any) -> dict[str, Any]:
        if self.closed:
            raise Unavailable(
                "a relay worker is gone", code="relay_worker_gone", headers={"Retry-After": "2"}
            )
        req = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[req] = fut
        self.writer.write(json_message({"op": op, "req": req, **data}))
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                return await fut
        except TimeoutError:
            raise Unavailable(
                "a relay worker did not answer",
                code="relay_worker_timeout",
                headers={"Retry-After": "5"},
            ) from None
        finally:
            self._pending.pop(req, None)

    async def watch(
        self,
        session_id: str,
        sdp: str,
        codecs: dict[str, str],
        params: dict[str, Any],
        viewer_id: str | None,
        connect_timeout: float = 10.0,
    ) -> dict[str, Any]:
        self.joining += 1  # counted against capacity while the worker negotiates
        try:
            reply = await self.request(
                "watch",
                session=session_id,
                sdp=sdp,
                codecs=codecs,
                params=params,
                viewer_id=viewer_id,
                connect_timeout=connect_timeout,
            )
        finally:
            self.joining -= 1
        if reply["op"] == "error":
            raise VitrineError(
                str(reply.get("detail", "")),
                code=str(reply.get("code", "error")),
                status=int(reply.get("status", 500)),
            )
        self.viewers[str(reply["resource"])] = session_id
        return reply

    def leave(self, resource_id: str) -> None:
        if not self.closed:
            self.writer.write(json_message({"op": "leave", "resource": resource_id}))

    def notify(self, op: str, **data: Any) -> None:
        if not self.closed:
            self.writer.write(json_message({"op": op, **data}))

    async def run(self) -> None:
        try:
            while True:
                kind, payload = await read_message(self.reader)
                if kind != b"J":
                    continue
                msg = parse_json(payload)
                op = msg["op"]
                if op in ("answer", "error", "stats"):
                    fut = self._pending.get(int(msg.get("req", 0)))
                    if fut is not None and not fut.done():
                        fut.set_result(msg)
                elif op == "load":
                    self.cpu = float(msg.get("cpu", 0.0))
                    self.lag = float(msg.get("lag", 0.0))
                    self.connecting = int(msg.get("connecting", 0))
                elif op == "keyframe":
                    self.on_keyframe(str(msg.get("session")))
                elif op == "left":
                    rid = str(msg.get("resource"))
                    sid = self.viewers.pop(rid, None)
                    if sid is not None:
                        reason = msg.get("reason")
                        self.on_left(self, rid, sid, str(reason) if reason else None)
        except (asyncio.IncompleteReadError, ConnectionError, WireError) as exc:
            if not isinstance(exc, asyncio.IncompleteReadError):
                log.warning("relay worker link %d failed: %s", self.index, exc)
        finally:
            self.closed = True
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_result(
                        {
                            "op": "error",
                            "status": 503,
                            "code": "relay_worker_gone",
                            "detail": "a relay worker is gone",
                        }
                    )
            viewers, self.viewers = self.viewers, {}
            for rid, sid in viewers.items():
                self.on_left(self, rid, sid, None)
            self.writer.close()


class WorkerPool:
    """Starts ``count`` worker processes on this machine and keeps a link to each."""

    def __init__(
        self,
        on_keyframe: Callable[[str], None],
        on_left: Callable[[WorkerLink, str, str, str | None], None],
    ) -> None:
        self.on_keyframe, self.on_left = on_keyframe, on_left
        self.secret = secrets.token_urlsafe(24)
        self.links: list[WorkerLink] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready = asyncio.Event()
        self._expected = 0
        self._port = 0
        self._env: dict[str, str] = {}
        self._closing = False
        self.respawned = 0

    async def start(self, count: int, env: dict[str, str], wait: float = 30.0) -> None:
        if count <= 0:
            return
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self._port = self._server.sockets[0].getsockname()[1]
        self._expected, self._env = count, env
        for i in range(count):
            self._spawn_process(i + 1)
        try:
            async with asyncio.timeout(wait):
                await self._ready.wait()
        except TimeoutError:
            log.error("only %d of %d relay workers connected", len(self.links), count)

    def _spawn_process(self, index: int) -> None:
        self.procs.append(
            subprocess.Popen(  # noqa: S603 - our own module
                [sys.executable, "-m", "rtc.worker", f"127.0.0.1:{self._port}", str(index)],
                env={**os.environ, **self._env, "VITRINE_RELAY_SECRET": self.secret},
            )
        )

    async def _run_link(self, link: WorkerLink) -> None:
        await link.run()
        for proc in self.procs:
            proc.poll()  # reap a worker that exited
        if not self._closing:  # a worker died: its viewers reconnect elsewhere; start a new one
            log.warning("relay worker %d is gone; starting another", link.index)
            self.respawned += 1
            self._spawn_process(link.index)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                kind, payload = await read_message(reader)
            hello = parse_json(payload) if kind == b"J" else {}
        except (TimeoutError, asyncio.IncompleteReadError, WireError, ConnectionError):
            writer.close()
            return
        if hello.get("op") != "hello" or not secrets.compare_digest(
            str(hello.get("secret", "")), self.secret
        ):
            writer.close()
            return
        link = WorkerLink(
            int(hello.get("index", 0)), reader, writer, self.on_keyframe, self.on_left
        )
        self.links.append(link)
        if len(self.links) >= self._expected:
            self._ready.set()
        task = asyncio.ensure_future(self._run_link(link))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def live_links(self) -> list[WorkerLink]:
        return [link for link in self.links if not link.closed]

    async def close(self) -> None:
        self._closing = True
        for link in self.links:
            link.writer.close()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                await asyncio.to_thread(proc.wait, 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait, 10)
