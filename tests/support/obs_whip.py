"""An OBS-like WHIP publisher: libdatachannel set up the way OBS Studio's WHIP output sets it up.

OBS Studio (>= 30) publishes over WHIP with libdatachannel (plugins/obs-webrtc/whip-output.cpp).
OBS itself cannot run here, so this drives the same library the same way: mids 0 (audio) and 1
(video), Opus PT 111 and H264 PT 96 with libdatachannel's default fmtp
(``profile-level-id=42e01f``), SSRC base/base+1 with one cname and msid, ``H264RtpPacketizer``
(start-sequence NAL separator, 1200-byte fragments) chained with ``RtcpSrReporter`` and
``RtcpNackResponder``, an offer with no ICE candidates (OBS gathers only after the answer and
never trickles), ``Authorization: Bearer``, frames sent only once the track is open, and a
DELETE after closing.

No Python binding of libdatachannel with its media API installs on CPython 3.11 / Linux x86_64:
``pylibdatachannel`` 0.2.0 has a cp311 wheel but data channels only (its bundled libdatachannel
is built without media), ``libdatachannel-py`` has wheels for CPython >= 3.12 only and
``aiolibdatachannel`` requires Python >= 3.12. So the peer runs in Node.js on
``node-datachannel`` (libdatachannel's Node binding, prebuilt, pinned in
``tests/support/obs/package-lock.json``): ``tests/support/obs/whip.mjs``. This module encodes the clips with
PyAV (libx264 set as OBS sets it), starts the Node process and reads its events.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rtc.synthetic import encode_clip, encode_tone
from tests.support.services import IN_CI

OBS_DIR = Path(__file__).with_name("obs")
SCRIPT = OBS_DIR / "whip.mjs"
MODULE = OBS_DIR / "node_modules" / "node-datachannel"

# OBS's x264 as its WHIP service leaves it: preset veryfast, no tune, B-frames off
# (whip-service.cpp sets bf=0 and repeat_headers=true), CBR as x264 ABR with VBV and filler
# (obs-x264.c). ``tune``/``level`` set to "" drop rtc.synthetic's real-time defaults.
OBS_X264 = {"preset": "veryfast", "tune": "", "level": "", "bf": "0"}


def obs_x264_clip(profile: str, frames: int = 30, fps: int = 30, kbps: int = 400) -> list[bytes]:
    """One closed GOP (IDR with SPS/PPS, then P frames), 320x240, as OBS's x264 would encode it.

    Played in a loop it is a stream with a keyframe every ``frames`` frames (OBS's keyframe
    interval), since OBS does not answer keyframe requests.
    """
    params = f"vbv-maxrate={kbps}:vbv-bufsize={kbps}:filler=1"
    return encode_clip(
        "h264", 320, 240, fps, frames, kbps * 1000, profile=profile,
        options={**OBS_X264, "x264-params": params},
    )  # fmt: skip


def opus_clip(packets: int = 50) -> list[bytes]:
    return encode_tone(packets)  # 20 ms Opus packets, 48 kHz stereo, like OBS's Opus encoder


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(reason + " (CI never skips)")
    pytest.skip(reason)


def need_node_datachannel() -> None:
    """Node.js with node-datachannel, installed from tests/support/obs/package-lock.json."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        _missing("Node.js is not installed: the OBS-like publisher runs on node-datachannel")
    if not MODULE.is_dir():
        if npm is None:
            _missing(
                "npm is not installed: it installs node-datachannel for the OBS-like publisher"
            )
        done = subprocess.run(
            [str(npm), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=OBS_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0 or not MODULE.is_dir():
            _missing(f"npm ci in {OBS_DIR} failed: {done.stderr.strip()[-500:]}")
    check = subprocess.run(
        [str(node), "--input-type=module", "-e", "import('node-datachannel')"],
        cwd=OBS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check.returncode != 0:
        _missing(f"node-datachannel does not load: {check.stderr.strip()[-500:]}")


def _write_packets(packets: list[bytes], directory: str, name: str) -> str:
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        for p in packets:
            f.write(struct.pack(">I", len(p)))
            f.write(p)
    return path


class ObsWhipPublisher:
    """One OBS-like WHIP session: :meth:`start` POSTs the offer, :meth:`stop` closes and DELETEs."""

    def __init__(
        self,
        video: list[bytes],
        audio: list[bytes] | None = None,
        *,
        fps: int = 30,
        kbps: int = 400,
        log: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        """``log``: a libdatachannel log level for stderr ("Debug"...); ``options``: more settings
        for whip.mjs (``keep_candidates``: offer the gathered candidates, as OBS 30 did;
        ``separator``: the H264RtpPacketizer NAL separator, "StartSequence" like OBS)."""
        self.video, self.audio = video, audio or []
        self.fps, self.kbps, self.log = fps, kbps, log
        self.options = options or {}
        self.events: list[dict[str, Any]] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="obs-whip-")
        self._stderr = open(os.path.join(self._dir.name, "stderr.log"), "w+b")
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    # -- what the publisher said -----------------------------------------------------------
    def first(self, event: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e["event"] == event), None)

    def last(self, event: str) -> dict[str, Any] | None:
        return next((e for e in reversed(self.events) if e["event"] == event), None)

    @property
    def offer(self) -> str:
        e = self.first("offer")
        return str(e["sdp"]) if e else ""

    @property
    def state(self) -> str:
        """libdatachannel's last peer connection state ("connecting", "connected", "closed"...)."""
        e = self.last("state")
        return str(e["state"]) if e else "new"

    @property
    def sent(self) -> dict[str, int]:
        e = self.last("sent")
        return {"video": e["video"], "audio": e["audio"]} if e else {"video": 0, "audio": 0}

    def stderr(self) -> str:
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-3000:]

    async def wait(
        self, predicate: Callable[[], Any], timeout: float = 20.0, what: str = "event"
    ) -> Any:
        """Wait until ``predicate()`` is truthy, re-checking on each event; fail with the log."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0 or (self.proc is not None and self.proc.returncode is not None):
                raise AssertionError(
                    f"OBS-like publisher: no {what} after {timeout}s; events "
                    f"{[e['event'] for e in self.events]}; errors "
                    f"{[e for e in self.events if e['event'] == 'error']}; stderr:\n{self.stderr()}"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))
            except TimeoutError:
                pass

    # -- running ---------------------------------------------------------------------------
    async def start(self, url: str, token: str | None) -> dict[str, Any]:
        """Start publishing to the WHIP endpoint ``url``; returns the answer event (status 201)."""
        cfg = {
            "url": url,
            "token": token,
            "video": _write_packets(self.video, self._dir.name, "video.h264s")
            if self.video
            else "",
            "audio": _write_packets(self.audio, self._dir.name, "audio.opus") if self.audio else "",
            "fps": self.fps,
            "bitrate_kbps": self.kbps,
            "log": self.log,
            **self.options,
        }
        node = shutil.which("node")
        assert node is not None
        self.proc = await asyncio.create_subprocess_exec(
            node,
            str(SCRIPT),
            json.dumps(cfg),
            cwd=OBS_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._stderr,
        )
        self._reader = asyncio.ensure_future(self._read())
        return await self.wait(  # type: ignore[no-any-return]
            lambda: self.first("answer") or self.first("error"), 20, "answer"
        )

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.events.append({"event": "garbage", "line": line.decode(errors="replace")})
            self._changed.set()
        self._changed.set()

    async def stop(self, timeout: float = 20.0) -> int | None:
        """OBS's Stop(): close the peer connection, then DELETE; returns the DELETE status."""
        if self.proc is None:
            return None
        if self.proc.returncode is None and self.proc.stdin is not None:
            self.proc.stdin.write(b"stop\n")
            await self.proc.stdin.drain()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            await self._reader
        deleted = self.last("deleted")
        return deleted["status"] if deleted else None

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
        self._stderr.close()
        self._dir.cleanup()
