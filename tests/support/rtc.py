"""Real aiortc peers for the relay tests: a WHIP host, WHEP watchers, and the one-process settings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.mediastreams import MediaStreamError

from live.config import Settings
from rtc import hooks
from rtc.client import Connection, negotiate, peer
from rtc.sdp import negotiated_codec
from rtc.synthetic import ClipTrack, encode_clip, encode_tone, honour_keyframe_requests
from tests.support.server import await_for

CLIPS: dict[str, list[bytes]] = {}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url  # the relay keeps no rows: one database kind is enough here


@pytest.fixture
def settings(database_url: str, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        database_url, relay_workers=1
    )  # one process; tests/test_rtc_workers.py has two


def clip(codec: str = "vp8") -> list[bytes]:
    if codec not in CLIPS:
        CLIPS[codec] = encode_clip(codec, 320, 240, 30, 30, 400_000)
    return CLIPS[codec]


class Host:
    """A WHIP publisher of a pre-encoded clip; ``offer`` lists the codecs it offers (default:
    ``codec`` only), in preference order; it then sends the clip of the codec negotiated."""

    def __init__(
        self, codec: str = "vp8", audio: bool = True, offer: tuple[str, ...] | None = None
    ) -> None:
        self.codec = codec
        self.offer = offer or (codec,)
        self.video = ClipTrack("video", clip(codec), 30, 90000, keep=400)
        self.audio = ClipTrack("audio", encode_tone(25), 50, 48000) if audio else None
        self.pc: RTCPeerConnection | None = None
        self.conn: Connection | None = None

    async def publish(self, http: httpx.AsyncClient, session_id: str, token: str) -> Connection:
        self.pc = pc = peer()
        t = pc.addTransceiver(self.video, direction="sendonly")
        caps = RTCRtpSender.getCapabilities("video").codecs
        t.setCodecPreferences(
            [c for name in self.offer for c in caps if c.mimeType.lower() == f"video/{name}"]
            + [c for c in caps if c.mimeType.lower() == "video/rtx"]
        )
        honour_keyframe_requests(t.sender, self.video)
        if self.audio is not None:
            pc.addTransceiver(self.audio, direction="sendonly")
        self.conn = await negotiate(http, f"/whip/{session_id}", pc, token)
        chosen = negotiated_codec(self.conn.answer, "video")
        assert chosen is not None
        self.codec = chosen[0].split("/")[1].lower()
        self.video.clip = clip(self.codec)  # before the first frame: media starts after ICE/DTLS
        return self.conn


class Watcher:
    """A viewer that keeps the encoded frames it receives (tap) or decodes them (decode=True)."""

    def __init__(self, decode: bool = False) -> None:
        self.decode = decode
        self.frames: list[bytes] = []
        self.decoded = 0
        self.audio_frames = 0
        self.pc: RTCPeerConnection | None = None
        self.conn: Connection | None = None
        self.tasks: list[asyncio.Task[Any]] = []

    async def watch(
        self,
        http: httpx.AsyncClient,
        session_id: str,
        token: str | None,
        kinds: tuple[str, ...] = ("video", "audio"),
    ) -> Connection:
        self.pc = pc = peer()
        for kind in kinds:
            t = pc.addTransceiver(kind, direction="recvonly")
            if not self.decode:
                hooks.tap_receiver(t.receiver, self._sink(kind), lambda: None)
        if self.decode:
            pc.on(
                "track", lambda track: self.tasks.append(asyncio.ensure_future(self._read(track)))
            )
        self.conn = await negotiate(http, f"/whep/{session_id}", pc, token)
        return self.conn

    def _sink(self, kind: str) -> Any:
        def sink(codec: Any, frame: Any) -> None:
            if kind == "video":
                self.frames.append(frame.data)
            else:
                self.audio_frames += 1

        return sink

    async def _read(self, track: Any) -> None:
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    assert frame.width == 320 and frame.height == 240
                    self.decoded += 1
                else:
                    self.audio_frames += 1
        except MediaStreamError:
            pass

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        if self.pc is not None:
            await self.pc.close()


async def close_all(host: Host, *watchers: Watcher) -> None:
    for w in watchers:
        await w.close()
    assert host.pc is not None
    await host.pc.close()


async def join(http: httpx.AsyncClient, session_id: str, invite: str | None = None) -> str:
    r = await http.post(
        f"/api/sessions/{session_id}/viewers", json={"invite": invite} if invite else {}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


async def host_drops_while_watched(
    server: Any, http: httpx.AsyncClient, session_id: str, token: str, watcher: Watcher, viewer: str
) -> None:
    """A VP8 host publishes, ``watcher`` (viewer token ``viewer``) decodes 10 frames, then the
    host's connection is lost and the relay sees it away."""
    first = Host("vp8")
    await first.publish(http, session_id, token)
    await watcher.watch(http, session_id, viewer)
    await await_for(lambda: watcher.decoded >= 10, 30, what="frames before the drop")
    assert first.pc is not None
    await first.pc.close()  # the host's connection is lost
    relay = server.app.state.relay
    await await_for(lambda: session_id not in relay.publishers, 20, what="host away")
