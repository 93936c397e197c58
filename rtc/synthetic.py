"""A synthetic publisher for tests and the benchmark: a pre-encoded clip sent as ``av.Packet``.

The clip is one GOP (a keyframe then delta frames) encoded once with PyAV. Playing it in a
loop is valid video; on a keyframe request the next frame sent is the clip's keyframe. The
track remembers what it sent, so tests can compare forwarded bytes with the original.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
from typing import Any

import av
import numpy as np
from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamTrack

VIDEO_CLOCK = 90000


def encode_clip(
    codec: str = "vp8",
    width: int = 320,
    height: int = 240,
    fps: int = 30,
    frames: int = 30,
    bitrate: int = 500_000,
    profile: str = "Baseline",
    options: dict[str, str] | None = None,
) -> list[bytes]:
    """Encode ``frames`` frames of a moving pattern; the first is a keyframe, the rest are not.

    H.264 only: ``profile`` is libx264's profile (with a preset that uses its tools, "High"
    really is High); ``options`` add to or replace the encoder options ("" drops one).
    """
    name = {"vp8": "libvpx", "h264": "libx264"}[codec]
    ctx: Any = av.CodecContext.create(name, "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = fractions.Fraction(1, fps)
    ctx.framerate = fractions.Fraction(fps, 1)
    ctx.bit_rate = bitrate
    ctx.gop_size = frames * 10
    if codec == "h264":
        ctx.profile = profile
        opts = {"tune": "zerolatency", "preset": "ultrafast", "level": "31", "bf": "0"}
        ctx.options = {k: v for k, v in {**opts, **(options or {})}.items() if v}
    else:
        # max-intra-rate: keyframes at most ~12x an average frame (~30 KB at 720p 2 Mbit/s), like real-time encoders
        ctx.options = {
            "deadline": "realtime",
            "cpu-used": "8",
            "lag-in-frames": "0",
            "max-intra-rate": "1200",
        }
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:height, 0:width]
    out: list[bytes] = []
    for i in range(frames):
        wave = 128 + 60 * np.sin((xx + 6 * i) / 23.0) * np.cos((yy - 4 * i) / 31.0)
        grain = rng.integers(0, 24, (height, width))
        img = np.ascontiguousarray(np.clip(wave + grain, 0, 255).astype(np.uint8))
        frame = av.VideoFrame.from_ndarray(img, format="gray").reformat(format="yuv420p")
        frame.pts = i
        frame.time_base = ctx.time_base
        if i == 0:
            frame.pict_type = av.video.frame.PictureType.I
        out.extend(bytes(p) for p in ctx.encode(frame))
    out.extend(bytes(p) for p in ctx.encode(None))
    return out[:frames]


def encode_tone(packets: int = 50) -> list[bytes]:
    """Opus packets (20 ms each) of a 440 Hz tone."""
    ctx: Any = av.CodecContext.create("libopus", "w")
    ctx.sample_rate, ctx.layout, ctx.format = 48000, "stereo", "s16"
    ctx.bit_rate = 64000
    out: list[bytes] = []
    t = 0
    while len(out) < packets:
        n = 960
        samples = (np.sin(2 * math.pi * 440 * (np.arange(t, t + n) / 48000)) * 8000).astype(
            np.int16
        )
        frame = av.AudioFrame.from_ndarray(
            np.repeat(samples, 2).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate, frame.pts = 48000, t
        t += n
        out.extend(bytes(p) for p in ctx.encode(frame))
    return out[:packets]


class ClipTrack(MediaStreamTrack):
    """Plays pre-encoded frames in real time as ``av.Packet`` (video or audio)."""

    def __init__(
        self, kind: str, clip: list[bytes], rate: float, clock: int, keep: int = 0
    ) -> None:
        super().__init__()
        self.kind = kind
        self.clip = clip
        self.rate, self.clock = rate, clock
        self.index = 0
        self.count = 0
        self.keyframes_forced = 0
        self.sent: list[bytes] = []  # the last ``keep`` payloads sent, for tests
        self.keep = keep
        self._start: float | None = None

    def force_keyframe(self) -> None:
        if self.kind == "video" and self.index != 0:
            self.index = 0
            self.keyframes_forced += 1

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self.count / self.rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        data = self.clip[self.index]
        self.index = (self.index + 1) % len(self.clip)
        packet = av.Packet(data)
        packet.pts = int(self.count * self.clock / self.rate)
        packet.time_base = fractions.Fraction(1, self.clock)
        self.count += 1
        if self.keep:
            self.sent.append(data)
            del self.sent[: -self.keep]
        return packet


def honour_keyframe_requests(sender: RTCRtpSender, track: ClipTrack) -> None:
    """Make a PLI/FIR from the relay restart the clip at its keyframe."""
    sender._send_keyframe = track.force_keyframe  # type: ignore[method-assign]
