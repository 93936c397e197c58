"""One session's stream: the frames the host publishes and the viewers they go to.

The publisher side calls :meth:`Broadcast.ingest` with each encoded frame as it comes out of
the receiver; the broadcast makes timestamps continuous across host reconnects, notes
keyframes and picture size, and :meth:`deliver` hands the frame to every local viewer track
and to every downstream feed (relay workers in other processes). Keyframe requests travel
the other way: a joining viewer asks at once, viewers' PLI/FIR are coalesced to about one
a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from rtc.frames import CLOCK, EncodedFrame, is_keyframe, picture_size
from rtc.sending import Packetizer
from rtc.tracks import Outgoing, ViewerTrack

JOIN_INTERVAL = 0.25  # seconds between keyframe requests caused by joining viewers
VIEWER_INTERVAL = 1.0  # seconds between keyframe requests caused by viewers' PLI/FIR
OUTSTANDING = 1.0  # a request with no keyframe after this long is sent again

KeyframeSource = Callable[[], Coroutine[object, object, None]]
FrameSink = Callable[[EncodedFrame], None]


@dataclass
class _Clock:
    source: object = None
    offset: int = 0
    last_out: int | None = None
    last_wall: float = 0.0


@dataclass
class IngestStats:
    window_start: float = field(default_factory=time.monotonic)
    bytes: dict[str, int] = field(default_factory=lambda: {"video": 0, "audio": 0})
    frames: int = 0
    bitrate: dict[str, int] = field(default_factory=lambda: {"video": 0, "audio": 0})
    fps: float = 0.0
    width: int | None = None
    height: int | None = None
    keyframes: int = 0
    frames_total: int = 0

    def add(self, kind: str, size: int, now: float) -> None:
        self.bytes[kind] += size
        if kind == "video":
            self.frames += 1
            self.frames_total += 1
        elapsed = now - self.window_start
        if elapsed >= 1.0:
            self.bitrate = {k: int(v * 8 / elapsed) for k, v in self.bytes.items()}
            self.fps = round(self.frames / elapsed, 1)
            self.bytes = {"video": 0, "audio": 0}
            self.frames = 0
            self.window_start = now


class Broadcast:
    def __init__(
        self,
        session_id: str,
        *,
        queue_frames: int = 90,
        on_forward: Callable[[str, int], None] | None = None,
    ) -> None:
        self.session_id = session_id
        self.queue_frames = queue_frames
        self.codecs: dict[str, str] = {}  # kind -> codec of the current (or last) publisher
        self.codec_params: dict[str, dict[str, Any]] = {}  # kind -> fmtp parameters (H.264 profile)
        self.tracks: dict[str, set[ViewerTrack]] = {"video": set(), "audio": set()}
        self.feeds: set[FrameSink] = set()
        self.stats = IngestStats()
        self.keyframe_source: KeyframeSource | None = None
        self._clocks = {"video": _Clock(), "audio": _Clock()}
        self._last_request = 0.0
        self._outstanding: float | None = None
        self._deferred: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_forward = on_forward
        self.keyframe_requests = 0
        self.host_away = False
        self.packetizer = Packetizer()

    # -- frames ------------------------------------------------------------------------------
    def ingest(self, kind: str, codec: str, source: object, timestamp: int, data: bytes) -> None:
        """A frame from the publisher ``source`` (timestamps start at 0 for each source)."""
        now = time.monotonic()
        clock = self._clocks[kind]
        if clock.source is not source:
            if clock.last_out is None:
                clock.offset = -timestamp
            else:  # a new publisher: continue where the last one stopped, plus the time away
                gap = max(1, int((now - clock.last_wall) * CLOCK[codec]))
                clock.offset = clock.last_out + gap - timestamp
            clock.source = source
        out = timestamp + clock.offset
        clock.last_out, clock.last_wall = out, now
        key = is_keyframe(codec, data)
        if kind == "video" and key:
            self.stats.keyframes += 1
            self._outstanding = None
            size = picture_size(codec, data)
            if size is not None:
                self.stats.width, self.stats.height = size
        self.stats.add(kind, len(data), now)
        self.deliver(EncodedFrame(kind, codec, out, key, data))

    def deliver(self, frame: EncodedFrame) -> None:
        """Hand one frame to every viewer track and downstream feed (no copy, no decode)."""
        if frame.keyframe and frame.kind == "video":
            self._outstanding = None
        tracks = self.tracks[frame.kind]
        if tracks:
            out = Outgoing(frame, self.packetizer.packetize(frame))
            for track in tracks:
                track.push(frame, out)
        for feed in tuple(self.feeds):
            feed(frame)
        if self._on_forward is not None:
            self._on_forward(frame.kind, len(tracks))

    # -- viewers -----------------------------------------------------------------------------
    def new_track(self, kind: str) -> ViewerTrack:
        codec = self.codecs[kind]
        limit = self.queue_frames if kind == "video" else self.queue_frames * 2
        return ViewerTrack(kind, codec, limit, on_overflow=lambda: self.request_keyframe("viewer"))

    def attach(self, track: ViewerTrack) -> None:
        self.tracks[track.kind].add(track)
        if track.kind == "video":
            self.request_keyframe("join")

    def detach(self, track: ViewerTrack) -> None:
        self.tracks[track.kind].discard(track)

    @property
    def viewer_tracks(self) -> int:
        return sum(len(t) for t in self.tracks.values())

    # -- keyframes ---------------------------------------------------------------------------
    def request_keyframe(self, reason: str) -> None:
        """Ask the publisher for a keyframe: joins at once, viewers' requests coalesced."""
        now = time.monotonic()
        if self._outstanding is not None and now - self._outstanding < OUTSTANDING:
            return  # one is on its way: every waiting viewer starts on it
        interval = JOIN_INTERVAL if reason == "join" else VIEWER_INTERVAL
        wait = self._last_request + interval - now
        if wait <= 0:
            self._send_keyframe_request(now)
        elif self._deferred is None:
            loop = asyncio.get_running_loop()
            self._deferred = loop.call_later(wait, self._deferred_request)

    def _deferred_request(self) -> None:
        self._deferred = None
        self._send_keyframe_request(time.monotonic())

    def _send_keyframe_request(self, now: float) -> None:
        source = self.keyframe_source
        if source is None:
            return  # no host now: the next publisher starts with a keyframe anyway
        self._last_request = now
        self._outstanding = now
        self.keyframe_requests += 1
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(source())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None
        for task in self._tasks:
            task.cancel()
        for tracks in self.tracks.values():
            for track in tracks:
                track.stop()
            tracks.clear()
        self.feeds.clear()
