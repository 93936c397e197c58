"""The track a viewer's sender reads: already-encoded frames from a bounded queue.

``RTCRtpSender`` packetises an ``av.Packet`` as is, so a viewer costs packetising and
encryption only, whatever the resolution. A video viewer starts on a keyframe; when its
queue overflows (a slow viewer) it drops what it holds and waits for the next keyframe
instead of showing broken pictures.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from rtc.frames import CLOCK, EncodedFrame


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One frame ready to send: its RTP payloads (packetised once for every viewer)."""

    frame: EncodedFrame
    payloads: list[bytes]

    @property
    def timestamp(self) -> int:
        return self.frame.timestamp


class ViewerTrack(MediaStreamTrack):
    def __init__(self, kind: str, codec: str, limit: int, on_overflow: Callable[[], None]) -> None:
        super().__init__()
        self.kind = kind
        self.codec = codec
        self.limit = limit
        self.on_overflow = on_overflow
        self.waiting_keyframe = kind == "video"
        self.frames_queued = 0
        self.frames_dropped = 0
        self.overflows = 0
        self._queue: deque[Outgoing] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.sender: Any = None  # a rtc.sending.ViewerSender once the connection sends

    def push(self, frame: EncodedFrame, out: Outgoing) -> None:
        if frame.codec != self.codec:
            self.frames_dropped += 1  # the host switched codec: this viewer cannot take it
            return
        if self.waiting_keyframe:
            if not frame.keyframe:
                self.frames_dropped += 1
                return
            self.waiting_keyframe = False
        if len(self._queue) >= self.limit:
            self.overflows += 1
            self.frames_dropped += len(self._queue) + 1
            self._queue.clear()
            if self.kind == "video":
                self.waiting_keyframe = True
                if (
                    self.sender is not None
                ):  # not yet connected: ask when it is (ViewerSender.run_rtp)
                    self.on_overflow()
                return
        self.frames_queued += 1
        if not self._queue and self.sender is not None and self.sender.send_now(out):
            return
        self._queue.append(out)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def recv(self) -> av.Packet:  # type: ignore[override]
        """The next frame as an ``av.Packet`` (what a stock ``RTCRtpSender`` packetises as is)."""
        out = await self.next()
        packet = av.Packet(out.frame.data)
        packet.pts = out.frame.timestamp
        packet.time_base = Fraction(1, CLOCK[out.frame.codec])
        return packet

    async def next(self) -> Outgoing:
        """The next frame with its RTP payloads (what :mod:`rtc.sending` sends)."""
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    def stop(self) -> None:
        super().stop()
        self._queue.clear()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
