"""One room WebSocket's output side: a bounded queue of ready-made frames and its writer task.

The hub never awaits a socket: it appends the same pre-serialised text to every connection's
queue. A connection whose queue is full has fallen behind; it is closed (code 4408) and the
client resumes with ``after``. uvicorn's ``send`` only suspends while the transport is paused
(the peer is not reading), so the writer drains quickly in the common case.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, cast

from starlette.types import Send

from live.room.events import Event

log = logging.getLogger("vitrine.room.connection")

CLOSE_SEND_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str


class Connection:
    """``role`` is ``viewer``, ``host`` or ``staff``; ``actor_id`` the viewer id or staff id."""

    __slots__ = (
        "_wake",
        "aborted",
        "actor_id",
        "awaiting",
        "closing",
        "held",
        "inflight",
        "last_id",
        "limit",
        "name",
        "parked",
        "pending",
        "protocol",
        "queue",
        "replaying",
        "role",
        "send",
        "session_id",
        "task",
        "viewer_id",
        "writer",
    )

    def __init__(
        self,
        send: Send,
        *,
        session_id: str,
        role: str,
        actor_id: str,
        name: str,
        limit: int,
        counted: bool = True,
    ) -> None:
        self.send, self.session_id, self.role, self.actor_id, self.name = (
            send,
            session_id,
            role,
            actor_id,
            name,
        )
        # a viewer of the audience (staff reading along a room are not counted as viewers)
        self.viewer_id: str | None = actor_id if role == "viewer" and counted else None
        self.limit = limit
        self.queue: deque[str | Close] = deque()
        self._wake = asyncio.Event()
        self.last_id = 0
        self.replaying = True  # live events go to ``pending`` until the replay is sent
        self.pending: list[Event] = []
        # the ids of this socket's own messages not committed yet: it gets nothing from the
        # first of them on (its echo is its acknowledgement) until they are; ``held`` keeps it
        self.awaiting: set[int] = set()
        self.held: list[Event] = []
        self.closing = False
        self.aborted = False
        self.writer: asyncio.Task[None] | None = None
        self.parked = False  # the writer waits for work: nothing queued, nothing in flight
        self.inflight: tuple[Coroutine[Any, Any, None], Any] | None = None
        self.protocol: Any = None  # the connection's RoomProtocol (mutes update it)
        self.task: asyncio.Task[Any] | None = asyncio.current_task()

    @property
    def is_staff(self) -> bool:
        return self.role != "viewer"

    def sees(self, ev: Event) -> bool:
        return ev.audience == "all" or (ev.audience == "staff" and self.role != "viewer")

    def push(self, text: str) -> bool:
        """Send or queue a frame; False when the queue is full (the caller closes the connection).

        Fast path: when the writer is parked, the frame is written at once by stepping the ASGI
        ``send`` coroutine here; it completes without suspending unless the transport is
        paused, in which case the writer task finishes it before anything queued after it.
        """
        if self.closing:
            return True
        if self.parked:
            self._send_now(text)
            return True
        if len(self.queue) >= self.limit:
            return False
        self.queue.append(text)
        self._wake.set()
        return True

    def _send_now(self, text: str) -> None:
        coro = cast(Coroutine[Any, Any, None], self.send({"type": "websocket.send", "text": text}))
        try:
            yielded = coro.send(None)
        except StopIteration:
            return
        except Exception:  # the peer went away (uvicorn's ClientDisconnected) or the socket failed
            self.closing = True
            return
        self.parked = False
        self.inflight = (coro, yielded)
        self._wake.set()

    def close(self, code: int, reason: str) -> None:
        """Drop what is queued and close with ``code`` once the socket accepts a frame."""
        if self.closing:
            return
        self.closing = True
        self.queue.clear()
        self.queue.append(Close(code, reason))
        self._wake.set()

    def start(self) -> None:
        self.writer = asyncio.create_task(self._write(), name=f"room-writer-{self.actor_id}")

    async def _write(self) -> None:
        send = self.send
        queue = self.queue
        try:
            while True:
                if self.inflight is not None:
                    await _finish(*self.inflight)
                    self.inflight = None
                    continue
                if not queue:
                    self._wake.clear()
                    self.parked = True
                    await self._wake.wait()
                    self.parked = False
                    continue
                item = queue.popleft()
                if isinstance(item, Close):
                    await self._send_close(item)
                    return
                await send({"type": "websocket.send", "text": item})
        except OSError:
            self.closing = True
        except Exception as exc:  # uvicorn's ClientDisconnected when the peer went away
            self.closing = True
            if type(exc).__name__ != "ClientDisconnected":
                log.exception("room writer failed")

    async def _send_close(self, item: Close) -> None:
        try:
            await asyncio.wait_for(
                self.send({"type": "websocket.close", "code": item.code, "reason": item.reason}),
                CLOSE_SEND_TIMEOUT,
            )
        except TimeoutError:  # the peer reads nothing: stop waiting for it
            self.aborted = True
            if self.task is not None:
                self.task.cancel()

    async def stop(self) -> None:
        self.parked = False
        if self.writer is not None and not self.writer.done():
            self.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.writer
        if self.inflight is not None:
            self.inflight[0].close()
            self.inflight = None


async def _finish(coro: Coroutine[Any, Any, None], yielded: Any) -> None:
    """Drive a coroutine that suspended while it was being stepped by hand (see ``push``)."""
    while True:
        try:
            if yielded is None:
                await asyncio.sleep(0)
            else:
                # what a Task does with a future its coroutine yielded: take over the wait
                yielded._asyncio_future_blocking = False
                await yielded
        except BaseException:
            coro.close()
            raise
        try:
            yielded = coro.send(None)
        except StopIteration:
            return
