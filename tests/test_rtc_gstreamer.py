"""Interop with GStreamer: a webrtcbin client publishes over WHIP and watches over WHEP.

The client (tests/support/gst_whip.py) runs under Debian's Python, which has PyGObject and
GStreamer; it is not the project's Python, so it is a subprocess that prints JSON lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiortc.mediastreams import MediaStreamError

from tests.support.rtc import Host, Watcher, database_url, settings  # noqa: F401 - one process, SQLite
from tests.support.server import LiveServer, await_for
from tests.support.services import IN_CI

GST_PYTHON = os.environ.get("VITRINE_GST_PYTHON", "/usr/bin/python3")
CLIENT = Path(__file__).parent / "support" / "gst_whip.py"
CODECS = {"vp8": "video/VP8", "h264": "video/H264"}
WIDTH, HEIGHT = 424, 240  # not aiortc's 320x240, and not a whole number of H.264 macroblocks
# The server runs in loopback mode (ICE on 127.0.0.1 only). libnice skips lo and pins each
# socket to its interface, so its eth0 candidate could not reach 127.0.0.1: gather on lo.
ICE = ("--local-address", "127.0.0.1")


@functools.cache
def _missing() -> tuple[str, ...]:
    if not os.access(GST_PYTHON, os.X_OK):
        return ("python3",)
    out = subprocess.run(
        [GST_PYTHON, str(CLIENT), "check"], capture_output=True, text=True, timeout=30
    )
    for line in out.stdout.splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if event.get("event") == "check":
                return tuple(event["missing"])
    return ("python3-gi",)  # the check itself could not run


def need_gstreamer() -> None:
    missing = _missing()
    if not missing:
        return
    msg = (
        f"the GStreamer WHIP/WHEP client needs Debian packages: {' '.join(missing)} "
        "(scripts/test installs them)"
    )
    if IN_CI:
        pytest.fail(msg + " (CI never skips)")
    pytest.skip(msg)


@pytest.fixture
def gstreamer() -> None:
    """Skip (or fail in CI) before the server starts when the client cannot run."""
    need_gstreamer()


class GstClient:
    """tests/support/gst_whip.py as a subprocess; its JSON events are collected as they come."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.events: list[dict[str, Any]] = []
        self.stderr = b""
        self.proc: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> GstClient:
        self.proc = await asyncio.create_subprocess_exec(
            GST_PYTHON,
            str(CLIENT),
            *self.args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "GST_DEBUG": os.environ.get("GST_DEBUG", "1")},
        )
        self._tasks = [
            asyncio.ensure_future(self._read_events()),
            asyncio.ensure_future(self._read_stderr()),
        ]
        return self

    async def _read_events(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            if line.strip():
                self.events.append(json.loads(line))

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for line in self.proc.stderr:
            self.stderr = (self.stderr + line)[-4000:]  # a pipe nobody reads would stall it

    def event(self, name: str) -> dict[str, Any] | None:
        return next((e for e in reversed(self.events) if e["event"] == name), None)

    def report(self) -> str:
        shown = [{k: _short(k, v) for k, v in e.items()} for e in self.events]
        return (
            f"events: {json.dumps(shown, indent=1)}\nstderr: {self.stderr.decode(errors='replace')}"
        )

    def ok(self) -> bool:
        """True while the client runs without an error (a failure raises, with its log)."""
        error = self.event("error")
        if error is not None:
            raise AssertionError(f"GStreamer client failed: {error['message']}\n{self.report()}")
        return True

    async def until(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        """``await_for`` that also stops on a client error, and shows the client's log on failure."""
        try:
            return await await_for(lambda: self.ok() and predicate(), timeout, what=what)
        except AssertionError as exc:
            if "GStreamer client failed" in str(exc):
                raise
            raise AssertionError(f"{exc}\n{self.report()}") from None

    async def wait(self, name: str, timeout: float) -> dict[str, Any]:
        event = await self.until(lambda: self.event(name), timeout, f"GStreamer {name!r}")
        return event  # type: ignore[no-any-return]

    async def stop(self, timeout: float = 15) -> dict[str, Any]:
        """Ask the client to leave (DELETE) and exit; its last event."""
        assert self.proc is not None and self.proc.stdin is not None
        if self.proc.returncode is None:
            with contextlib.suppress(ConnectionError):
                self.proc.stdin.write(b"stop\n")
                await self.proc.stdin.drain()
        return await self.exited(timeout)

    async def exited(self, timeout: float = 15) -> dict[str, Any]:
        assert self.proc is not None
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        await asyncio.wait_for(asyncio.gather(*self._tasks), 5)
        done = self.event("done")
        assert code == 0 and done is not None, f"GStreamer client exited {code}\n{self.report()}"
        return done

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        for task in self._tasks:
            task.cancel()


class SizedWatcher(Watcher):
    """An aiortc viewer that decodes and notes each picture size (any size, not only 320x240)."""

    def __init__(self) -> None:
        super().__init__(decode=True)
        self.sizes: set[tuple[int, int]] = set()

    async def _read(self, track: Any) -> None:
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    self.sizes.add((frame.width, frame.height))
                    self.decoded += 1
                else:
                    self.audio_frames += 1
        except MediaStreamError:
            pass


def _short(key: str, value: Any) -> Any:
    """An SDP shown by its candidates and media lines; other long text cut."""
    if key in ("sdp", "answer") and isinstance(value, str):
        keep = ("m=", "a=candidate", "a=setup", "a=rtpmap", "a=fmtp", "a=send", "a=recv")
        return [line for line in value.splitlines() if line.startswith(keep)]
    return value[:600] if isinstance(value, str) else value


def _resource(posted: dict[str, Any], prefix: str, sid: str) -> str:
    location = posted["location"]
    assert location.startswith(f"/{prefix}/{sid}/"), posted
    return str(location.rsplit("/", 1)[1])


@pytest.mark.parametrize("codec", ["vp8", "h264"])
async def test_gstreamer_publishes_over_whip(
    gstreamer: None, server: LiveServer, world: dict[str, Any], codec: str
) -> None:
    sid, token = world["public"]["id"], world["public"]["host_token"]
    relay = server.app.state.relay
    gst = GstClient(
        "whip", f"{server.url}/whip/{sid}", "--token", token, "--codec", codec,
        "--width", str(WIDTH), "--height", str(HEIGHT), "--deadline", "45", *ICE,
    )  # fmt: skip
    await gst.start()
    watcher = SizedWatcher()
    try:
        posted = await gst.wait("posted", 20)
        assert posted["status"] == 201, gst.report()
        resource = _resource(posted, "whip", sid)
        assert resource in relay.peers
        await gst.until(
            lambda: sid in relay.broadcasts and relay.broadcasts[sid].stats.width,
            20,
            "the GStreamer host's video at the relay",
        )
        b = relay.broadcasts[sid]
        assert b.codecs == {"video": CODECS[codec], "audio": "audio/opus"}
        assert (b.stats.width, b.stats.height) == (WIDTH, HEIGHT)
        async with server.aclient() as http:
            await watcher.watch(http, sid, None)
            await gst.until(
                lambda: watcher.decoded >= 15 and watcher.audio_frames >= 10,
                20,
                "an aiortc viewer decoding the GStreamer host",
            )
        assert watcher.sizes == {(WIDTH, HEIGHT)}
        await watcher.close()
        done = await gst.stop()
        deleted = gst.event("deleted")
        assert deleted is not None and deleted["status"] == 200, gst.report()
        assert done["code"] == 0
        await await_for(lambda: resource not in relay.peers, 10, what="the relay to free the host")
        assert sid not in relay.publishers
    finally:
        await watcher.close()
        await gst.kill()


@pytest.mark.parametrize("codec", ["vp8", "h264"])
async def test_gstreamer_watches_over_whep(
    gstreamer: None, server: LiveServer, world: dict[str, Any], codec: str
) -> None:
    sid, token = world["public"]["id"], world["public"]["host_token"]
    relay = server.app.state.relay
    host = Host(codec)
    gst: GstClient | None = None
    try:
        async with server.aclient() as http:
            await host.publish(http, sid, token)
        await await_for(
            lambda: sid in relay.broadcasts and relay.broadcasts[sid].stats.width,
            20,
            what="the aiortc host's video at the relay",
        )
        gst = GstClient(
            "whep", f"{server.url}/whep/{sid}", "--frames", "15", "--audio", "10",
            "--deadline", "40", *ICE,
        )  # fmt: skip
        await gst.start()
        posted = await gst.wait("posted", 20)
        assert posted["status"] == 201, gst.report()
        resource = _resource(posted, "whep", sid)
        done = await gst.wait("done", 30)  # it leaves by itself once it has decoded enough
        await gst.exited()
        assert done["video_frames"] >= 15 and done["audio_buffers"] >= 10, gst.report()
        assert done["size"] == [320, 240], gst.report()
        tracks = [e["caps"] for e in gst.events if e["event"] == "track"]
        assert any(f"encoding-name=(string){codec.upper()}" in c for c in tracks), tracks
        assert any("encoding-name=(string)OPUS" in c for c in tracks), tracks
        deleted = gst.event("deleted")
        assert deleted is not None and deleted["status"] == 200, gst.report()
        await await_for(
            lambda: resource not in relay.peers, 10, what="the relay to free the viewer"
        )
        assert host.conn is not None and host.conn.pc.connectionState == "connected"
    finally:
        if gst is not None:
            await gst.kill()
        if host.pc is not None:
            await host.pc.close()
